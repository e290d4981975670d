"""The installer's offline path and its mmcv build choice, through the real scripts."""
import os
import os.path as osp
import subprocess
import sys
import venv

import pytest
from packaging.version import Version

from conftest import REPO

pytestmark = [pytest.mark.slow, pytest.mark.cli]


def _run(cmd, env=None, **kw):
    # PIP_CONFIG_FILE=/dev/null: a machine-wide pip.conf (extra find-links, mirrors) must not feed the
    # offline installs under test.
    return subprocess.run(cmd, cwd=REPO, env=dict(os.environ, PIP_CONFIG_FILE=os.devnull, **(env or {})),
                          capture_output=True, text=True, **kw)


def _wheelhouse(house, reqs=None, **env):
    """tools/wheelhouse.sh for the requirement file ``reqs`` (None: mmdg's own requirements)."""
    env = dict(env, REQUIREMENTS=str(reqs)) if reqs else env
    res = _run(['bash', 'tools/wheelhouse.sh', str(house)], env=dict(PYTHON=sys.executable, **env))
    if res.returncode and ('Could not find a version' in res.stderr or 'NewConnectionError' in res.stderr):
        pytest.skip('the package index is unreachable from this machine')
    assert res.returncode == 0, res.stderr
    return res


def test_wheelhouse_then_offline_install(tmp_path):
    """tools/wheelhouse.sh resolves a requirement set into a lock and collects it; a fresh venv installs the
    lock with the index disabled."""
    reqs = tmp_path / 'reqs.txt'
    reqs.write_text('addict==2.4.0\n')  # one small pure-python wheel keeps the test fast
    house = tmp_path / 'house'
    _wheelhouse(house, reqs)
    assert any(f.startswith('addict-2.4.0') for f in os.listdir(house)), os.listdir(house)
    assert (house / 'install.lock.txt').read_text() == 'addict==2.4.0\n'
    assert (house / 'requirements.in.txt').read_text() == 'addict==2.4.0\n'

    env_dir = tmp_path / 'venv'
    venv.create(env_dir, with_pip=True)
    py = str(env_dir / 'bin' / 'python')
    # PIP_INDEX_URL pointing nowhere: any attempt to reach an index would fail the install.
    res = subprocess.run([py, '-m', 'pip', 'install', '--no-index', '--no-deps', '--find-links', str(house),
                          '-r', str(house / 'install.lock.txt')],
                         env=dict(os.environ, PIP_INDEX_URL='http://127.0.0.1:9/simple', PIP_CONFIG_FILE=os.devnull),
                         capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    assert subprocess.run([py, '-c', 'import addict'], capture_output=True).returncode == 0


def test_wheelhouse_for_a_system_torch_target_leaves_torch_and_what_is_present_out(tmp_path):
    """TORCH=system: torch, torchvision and what only they need (3 GB of CUDA wheels) stay out; PRESENT (the
    target's freeze) leaves out what the target has, here everything timm needs but timm itself."""
    reqs = tmp_path / 'reqs.txt'
    reqs.write_text('timm==1.0.31\n')
    present = tmp_path / 'present.txt'
    present.write_text('huggingface-hub==2.4.0\npyyaml\nsafetensors==0.8.0\n')
    house = tmp_path / 'house'
    res = _wheelhouse(house, reqs, TORCH='system', PRESENT=str(present))
    assert (house / 'install.lock.txt').read_text() == 'timm==1.0.31\n', res.stderr
    assert sorted(os.listdir(house)) == ['install.lock.txt', 'requirements.in.txt', 'timm-1.0.31-py3-none-any.whl']
    assert "the target's own torch: 2" in res.stderr


def _report(packages, requested=('app',)):
    """A pip --report as `pip install --dry-run` writes it: {name: (version, [requires_dist])}."""
    env = dict(implementation_name='cpython', implementation_version='3.11.7', os_name='posix',
               platform_machine='x86_64', platform_release='', platform_system='Linux', platform_version='',
               python_full_version='3.11.7', platform_python_implementation='CPython', python_version='3.11',
               sys_platform='linux')
    return dict(environment=env, install=[
        dict(metadata=dict(name=n, version=v, requires_dist=deps), requested=n in requested)
        for n, (v, deps) in packages.items()])


def test_wheelhouse_lock_rules():
    from packaging.requirements import Requirement
    from mmdg.utils.wheelhouse_lock import lock
    packages = {
        'app': ('1.0', ['torch>=2', 'numpy>=1.24', 'opencv-python', 'setuptools<81', 'timm<1.1',
                        'tomli; python_version < "3.11"', 'rich[jupyter]']),
        'torch': ('2.14.0', ['nvidia-cublas', 'sympy', 'filelock']),
        'nvidia-cublas': ('13.1', []), 'sympy': ('1.14', ['mpmath']), 'mpmath': ('1.3', []),
        'filelock': ('3.0', []), 'numpy': ('2.4.0', []), 'opencv-python': ('5.1', ['numpy>=2']),
        'setuptools': ('80.10', []), 'timm': ('1.0.31', ['torch', 'filelock']), 'tomli': ('2.0', []),
        'rich': ('15.0', ['pygments', 'ipywidgets; extra == "jupyter"']), 'pygments': ('2.0', []),
        'ipywidgets': ('8.0', []),
    }
    report = _report(packages)
    roots = [Requirement('app')]
    names = lambda locked: sorted(n for n, _ in locked)  # noqa: E731

    everything, _ = lock(report, roots)
    assert 'tomli' not in names(everything)  # its marker is false on 3.11
    assert 'ipywidgets' in names(everything)  # rich[jupyter] pulls its extra in
    assert names(lock(report, roots, python_version='3.10')[0]).count('tomli') == 1

    locked, left_out = lock(report, roots, system_torch=True)
    assert {'torch', 'nvidia-cublas', 'sympy', 'mpmath'} <= set(left_out)
    assert 'filelock' in names(locked)  # timm needs it too: it stays
    assert left_out['torch'] == "the target's own torch"

    present = {'numpy': Version('2.5.2'), 'opencv-python-headless': Version('4.11'), 'setuptools': None,
               'timm': Version('1.1.0'), 'pygments': None}
    locked, left_out = lock(report, roots, system_torch=True, present=present)
    locked = names(locked)
    assert 'numpy' not in locked and 'opencv-python' not in locked  # headless provides cv2
    assert 'setuptools' in locked  # capped (<81) and the target's version is unknown: installed over it
    assert 'timm' in locked  # 1.1.0 breaks timm<1.1
    assert 'pygments' not in locked  # uncapped: a bare name is enough
    present['numpy'] = Version('1.20')  # below app's numpy>=1.24: installed over it
    assert 'numpy' in names(lock(report, roots, system_torch=True, present=present)[0])


def test_installer_refuses_bad_switches(tmp_path):
    res = _run(['bash', 'tools/install_env.sh'], env=dict(MMCV_OPS='gpu', VENV=str(tmp_path / 'v')))
    assert res.returncode == 2 and 'MMCV_OPS must be auto, cuda or cpu' in res.stderr
    res = _run(['bash', 'tools/install_env.sh'], env=dict(WHEELHOUSE=str(tmp_path / 'absent'), VENV=str(tmp_path / 'v')))
    assert res.returncode == 2 and 'is not a folder' in res.stderr
    assert not (tmp_path / 'v').exists()  # refused before anything was created


def test_installer_offline_uses_only_the_wheelhouse(tmp_path):
    """With WHEELHOUSE set every pip call is --no-index: a wheelhouse without the wheels its lock names fails
    on the first one instead of reaching the network."""
    house = tmp_path / 'empty_house'
    house.mkdir()
    (house / 'install.lock.txt').write_text('addict==2.4.0\n')
    venv_dir = tmp_path / 'v'
    res = _run(['bash', 'tools/install_env.sh'], env=dict(WHEELHOUSE=str(house), VENV=str(venv_dir),
                                                          PYTHON=sys.executable, PIP_INDEX_URL='http://127.0.0.1:9/x'),
               timeout=300)
    assert res.returncode != 0
    assert 'offline install from' in res.stdout
    out = res.stdout + res.stderr
    assert 'No matching distribution' in out or 'Could not find a version' in out, out[-2000:]
    assert '127.0.0.1:9' not in out  # the index was never tried


# --- the mmcv build plan (mmdg.utils.install_check.plan), with fake toolkits and the real host compiler ---

def _toolkit(root, headers=('cuda_runtime_api.h', 'cuda_runtime.h', 'cublas_v2.h', 'cusparse.h'), nvcc_ok=True):
    """A CUDA_HOME with an ``nvcc`` that compiles anything (or fails) and stub headers in include/."""
    (root / 'bin').mkdir(parents=True)
    (root / 'include').mkdir()
    nvcc = root / 'bin' / 'nvcc'
    nvcc.write_text('#!/bin/sh\nexit 0\n' if nvcc_ok else
                    '#!/bin/sh\necho "probe.cu(3): error: identifier \\"__half\\" is undefined" >&2\nexit 2\n')
    nvcc.chmod(0o755)
    for h in headers:
        (root / 'include' / h).write_text('#pragma once\nenum { cudaSuccess = 0 };\n' if 'runtime' in h else '#pragma once\n')
    return root


@pytest.fixture
def install_check(monkeypatch):
    """The plan as the installer runs it, on a machine without a visible GPU unless a test says otherwise."""
    from mmdg.utils import install_check
    for var in ('CUDA_HOME', 'CUDA_PATH', 'TORCH_CUDA_ARCH_LIST', 'CPATH'):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(install_check, 'gpu_visible', lambda: False)
    return install_check


def test_mmcv_ops_plan_without_a_gpu_builds_cpu_ops(install_check, monkeypatch, tmp_path):
    """A CPU machine that merely has an nvcc gets CPU ops (a CUDA build costs it an hour for kernels it never
    runs); TORCH_CUDA_ARCH_LIST (a login node) or MMCV_OPS=cuda asks for CUDA ops; the cache key names
    torch, CUDA and the ops; the reason says how to get the other kind."""
    import torch
    cuda = torch.version.cuda
    monkeypatch.setenv('CUDA_HOME', str(_toolkit(tmp_path / 'cuda')))
    ops, archs, tag, cpath, why = install_check.plan('auto')
    assert (ops, archs, cpath) == ('cpu', '-', '-') and tag.endswith(f'_cuda-{cuda or "none"}_ops-cpu')
    assert ('no GPU visible' in why and 'MMCV_OPS=cuda' in why) if cuda else 'CPU build' in why
    assert install_check.plan('cpu')[0] == 'cpu'
    if not cuda:
        return
    ops, archs, tag, cpath, why = install_check.plan('cuda')
    assert (ops, archs, cpath) == ('cuda', '8.0;8.6;8.9;9.0', '-') and tag.endswith('_ops-cuda-8.0_8.6_8.9_9.0')
    assert 'MMCV_OPS=cpu' in why
    monkeypatch.setenv('TORCH_CUDA_ARCH_LIST', '9.0')
    ops, archs, tag, _, why = install_check.plan('auto')
    assert (ops, archs) == ('cuda', '9.0') and tag.endswith('_ops-cuda-9.0') and 'TORCH_CUDA_ARCH_LIST=9.0' in why
    monkeypatch.delenv('TORCH_CUDA_ARCH_LIST')
    monkeypatch.setattr(install_check, 'gpu_visible', lambda: True)
    monkeypatch.setattr(torch.cuda, 'device_count', lambda: 1)
    monkeypatch.setattr(torch.cuda, 'get_device_capability', lambda i: (9, 0))
    assert install_check.plan('auto')[:2] == ('cuda', '9.0')  # the visible GPU's architecture


def test_mmcv_ops_plan_probe_compiles_like_mmcvs_build(install_check, monkeypatch, tmp_path):
    """The situation that failed a 40-minute build: a compiler-only toolkit (no cublas_v2.h) beside torch's
    NVIDIA wheels, whose cuda_runtime_api.h includes crt/host_defines.h, which the wheels do not ship.
    Preprocessing the headers with nvcc passed; compiling one .cpp with the host compiler, as mmcv's build
    compiles info.cpp, fails in seconds with the compiler's line. auto falls back to CPU ops with that line,
    MMCV_OPS=cuda stops before the build with it."""
    import torch
    if not torch.version.cuda:
        pytest.skip('a CPU build of torch never builds CUDA ops')
    monkeypatch.setenv('CUDA_HOME', str(_toolkit(tmp_path / 'cuda', headers=())))  # compiler-only
    wheel = tmp_path / 'site-packages' / 'nvidia' / 'cu13' / 'include'
    wheel.mkdir(parents=True)
    (wheel / 'cuda_runtime_api.h').write_text('#pragma once\n#include "crt/host_defines.h"\nenum { cudaSuccess = 0 };\n')
    for h in ('cuda_runtime.h', 'cublas_v2.h', 'cusparse.h'):
        (wheel / h).write_text('#pragma once\n#include "cuda_runtime_api.h"\n')
    monkeypatch.setenv('TORCH_CUDA_ARCH_LIST', '9.0')  # a login node: auto would build CUDA ops
    ops, _, _, cpath, why = install_check.plan('auto', wheel_include_dirs=[str(wheel)])
    assert ops == 'cpu' and cpath == '-'
    assert "cannot build mmcv's CUDA ops" in why and 'crt/host_defines.h: No such file or directory' in why, why
    with pytest.raises(SystemExit, match=r'MMCV_OPS=cuda but .*crt/host_defines\.h: No such file'):
        install_check.plan('cuda', wheel_include_dirs=[str(wheel)])
    # the same wheels with the header they lack: the probe passes and the build gets them on CPATH
    (wheel / 'crt').mkdir()
    (wheel / 'crt' / 'host_defines.h').write_text('#pragma once\n')
    ops, archs, _, cpath, _ = install_check.plan('cuda', wheel_include_dirs=[str(wheel)])
    assert (ops, archs, cpath) == ('cuda', '9.0', str(wheel))


def test_mmcv_ops_plan_probe_reports_an_nvcc_failure(install_check, monkeypatch, tmp_path):
    import torch
    if not torch.version.cuda:
        pytest.skip('a CPU build of torch never builds CUDA ops')
    monkeypatch.setenv('CUDA_HOME', str(_toolkit(tmp_path / 'cuda', nvcc_ok=False)))
    with pytest.raises(SystemExit, match=r'identifier "__half" is undefined'):
        install_check.plan('cuda', wheel_include_dirs=[])


def test_mmcv_ops_plan_refuses_cuda_without_nvcc(install_check, monkeypatch, tmp_path):
    monkeypatch.setenv('PATH', str(tmp_path))  # no nvcc anywhere
    import torch
    expected = 'nvcc is neither on PATH' if torch.version.cuda else 'is a CPU build'
    with pytest.raises(SystemExit, match=expected):
        install_check.plan('cuda')


def test_newcomer_plan_on_this_machine():
    """What `make demo` / `make test` plan here, from the real machine facts (torch, nvcc, GPUs, env): on a
    machine without a visible GPU and without TORCH_CUDA_ARCH_LIST, CPU ops, and the reason says so."""
    import torch
    res = _run([sys.executable, '-m', 'mmdg.utils.install_check', '--plan', 'auto'])
    assert res.returncode == 0, res.stderr
    ops, archs, tag, cpath, why = res.stdout.strip().split(' ', 4)
    if torch.cuda.is_available() or os.environ.get('TORCH_CUDA_ARCH_LIST'):
        assert ops in ('cuda', 'cpu')  # a GPU machine: CUDA ops unless the probe found a broken toolkit
        return
    assert (ops, archs, cpath) == ('cpu', '-', '-'), res.stdout
    assert why.startswith('no GPU visible') if torch.version.cuda else 'CPU build' in why


def test_one_environment_whichever_command_comes_first(tmp_path):
    """The stamp records what .venv has (torch kind, mmcv's ops), so `make demo`, `make test`, an explicit
    MMCV_OPS=cpu first, or a plain `make test` after it, all reuse it (exit 0 at once, no output); it is
    rebuilt only when it cannot serve: requirements changed, another ops kind or torch asked for explicitly,
    or CUDA wanted (TORCH_CUDA_ARCH_LIST) while mmcv has CPU ops."""
    env_hash = _run(['bash', 'tools/install_env.sh', '--env-hash']).stdout.strip()
    assert len(env_hash) == 16
    venv_dir = tmp_path / 'v'
    (venv_dir / 'bin').mkdir(parents=True)
    (venv_dir / 'bin' / 'python').write_text('#!/bin/sh\nexit 3\n')  # any install step fails at once
    (venv_dir / 'bin' / 'python').chmod(0o755)

    def install(stamp, **env):
        (venv_dir / '.mmdg-env').write_text(stamp + '\n')
        env = {'VENV': str(venv_dir), 'MMCV_OPS': '', 'TORCH': '', 'TORCH_CUDA_ARCH_LIST': '', **env}
        res = _run(['bash', 'tools/install_env.sh'], env=env)
        # past the stamp, the first install step fails (the fake python): that is a reinstall attempt
        return 'reused' if res.returncode == 0 and not res.stdout + res.stderr else 'reinstalled'

    cpu_env = f'{env_hash} pinned cpu'
    if any(osp.exists(f'/dev/nvidia{i}') for i in range(8)):
        pytest.skip('this machine has a GPU device: a CPU-ops environment is rebuilt on purpose')
    for ops in ('', 'auto', 'cpu'):
        assert install(cpu_env, MMCV_OPS=ops) == 'reused', ops
    assert install(cpu_env, TORCH='pinned') == 'reused'
    assert install(f'{env_hash} pinned cuda') == 'reused'  # CUDA ops serve a CPU machine too
    assert install(f'{env_hash} pinned cuda', MMCV_OPS='cuda') == 'reused'
    assert install(cpu_env, MMCV_OPS='cuda') == 'reinstalled'
    assert install(f'{env_hash} pinned cuda', MMCV_OPS='cpu') == 'reinstalled'
    assert install(cpu_env, TORCH_CUDA_ARCH_LIST='9.0') == 'reinstalled'
    assert install(cpu_env, TORCH='system') == 'reinstalled'
    assert install('0123456789abcdef pinned cpu') == 'reinstalled'  # a requirement file changed
    # a venv an earlier TORCH=system install made (no stamp of this format): refreshed with its own torch,
    # never with a 3 GB pinned one
    (venv_dir / '.mmdg-env').unlink()
    (venv_dir / 'pyvenv.cfg').write_text('home = /usr/bin\ninclude-system-site-packages = true\n')
    res = _run(['bash', 'tools/install_env.sh'], env={'VENV': str(venv_dir), 'MMCV_OPS': '', 'TORCH': ''})
    assert 'TORCH=system but torch/torchvision cannot be imported' in res.stderr, res.stdout + res.stderr


_FAKE_GPU = ("import sys, torch; torch.cuda.is_available = lambda: True; "
             "from mmdg.utils.install_check import main; sys.exit(main(['--verify']))")


def test_install_check_fails_loudly_when_a_gpu_meets_cpu_ops():
    from mmcv.ops import get_compiling_cuda_version
    if get_compiling_cuda_version() != 'not available':
        pytest.skip('this mmcv has CUDA ops')
    ok = _run([sys.executable, 'tools/check_install.py', '--verify'])
    assert ok.returncode == 0 and '[install] ok' in ok.stdout and '(CPU ops)' in ok.stdout, ok.stderr
    res = _run([sys.executable, '-c', _FAKE_GPU])
    assert res.returncode != 0
    assert 'torch sees a GPU but mmcv was built without CUDA ops' in res.stderr
    res = _run([sys.executable, 'tools/check_install.py', '--verify', '--want-cuda-ops'])
    assert res.returncode != 0 and 'CUDA ops were asked for' in res.stderr


def test_pip_install_editable_declares_the_runtime_requirements(tmp_path):
    """`pip install -e .` after a user's own torch + mmcv resolves mmdg's runtime requirements (read from
    requirements/runtime.txt, without torch or mmcv) from what is installed, with no index."""
    import json
    report = tmp_path / 'report.json'
    res = _run([sys.executable, '-m', 'pip', 'install', '--dry-run', '--no-index', '--no-build-isolation',
                '--report', str(report), '-e', '.'], timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    (mmdg,) = [i for i in json.loads(report.read_text())['install'] if i['metadata']['name'] == 'mmdg']
    declared = mmdg['metadata']['requires_dist']
    runtime = [line.split('#')[0].strip() for line in open(osp.join(REPO, 'requirements', 'runtime.txt'))]
    assert {d.split(';')[0].replace(' ', '') for d in declared} >= {'mmengine==0.10.7', 'mmsegmentation==1.2.2',
                                                                     'mmdet==3.3.0'}
    assert len(declared) == len([r for r in runtime if r])
    assert not [d for d in declared if d.startswith(('torch', 'mmcv'))]


def _env_with_only(parent, src_site, leave_out):
    """A venv at ``parent`` whose site-packages links every distribution of ``src_site`` but ``leave_out``:
    a stand-in for a GPU image's environment (torch and friends, no OpenMMLab). Returns its freeze."""
    import importlib.metadata as md
    from packaging.utils import canonicalize_name
    venv.create(parent, with_pip=False)
    site_dir = next((parent / 'lib').glob('python*/site-packages'))
    freeze, linked = [], set()
    for dist in md.distributions(path=[src_site]):
        if canonicalize_name(dist.metadata['Name']) in leave_out:
            continue
        freeze.append(f"{dist.metadata['Name']}=={dist.version}")
        for f in dist.files or []:
            top = str(f).split('/')[0]
            if top not in linked and top != '__pycache__' and not top.startswith('..') and not top.endswith('.pth') \
                    and osp.exists(osp.join(src_site, top)):
                os.symlink(osp.join(src_site, top), site_dir / top)
                linked.add(top)
    return '\n'.join(sorted(freeze)) + '\n'


def test_offline_install_over_a_system_torch_venv(tmp_path):
    """The GPU-image case end to end: the machine's python is itself a venv holding torch, timm, OpenCV, ...
    but no OpenMMLab. A wheelhouse made for it (TORCH=system, PRESENT=its freeze) holds only what it lacks,
    and `install_env.sh TORCH=system WHEELHOUSE=...` installs from it with the index unreachable; the new
    .venv sees the parent venv's torch (a plain --system-site-packages venv would not)."""
    if sys.prefix == sys.base_prefix:
        pytest.skip('the tests do not run in a virtual environment')
    plan = _run([sys.executable, '-m', 'mmdg.utils.install_check', '--plan', 'cpu']).stdout.split()
    cache = osp.join(os.environ.get('MMDG_WHEEL_CACHE', osp.expanduser('~/.cache/mmdg/wheels')), plan[2])
    if not (osp.isdir(cache) and any(f.startswith('mmcv-2.1.0-') for f in os.listdir(cache))):
        pytest.skip(f'no cached CPU-ops mmcv wheel in {cache} (make install builds it; 30 min to build here)')
    import site
    openmmlab = {'mmengine', 'mmsegmentation', 'mmdet', 'mmcv', 'mmdg', 'addict', 'yapf', 'terminaltables'}
    parent = tmp_path / 'image_env'
    (tmp_path / 'present.txt').write_text(_env_with_only(parent, site.getsitepackages()[0], openmmlab))
    assert subprocess.run([str(parent / 'bin' / 'python'), '-c', 'import mmengine'], capture_output=True).returncode
    house = tmp_path / 'house'
    res = _wheelhouse(house, TORCH='system', PRESENT=str(tmp_path / 'present.txt'))
    lock = (house / 'install.lock.txt').read_text()
    assert 'mmengine==0.10.7' in lock and 'mmdet==3.3.0' in lock and 'addict==' in lock
    assert 'torch' not in lock and 'timm' not in lock and 'numpy' not in lock, lock  # the image has them
    assert (house / 'mmcv-2.1.0.tar.gz').exists()

    venv_dir = tmp_path / 'venv'
    res = _run(['bash', 'tools/install_env.sh'], timeout=900,
               env=dict(PYTHON=str(parent / 'bin' / 'python'), TORCH='system', MMCV_OPS='cpu', WHEELHOUSE=str(house),
                        VENV=str(venv_dir), PIP_INDEX_URL='http://127.0.0.1:9/simple'))
    assert res.returncode == 0, (res.stdout + res.stderr)[-3000:]
    assert 'is itself a virtual environment' in res.stdout
    assert '[install] ok: torch' in res.stdout + res.stderr
    where = subprocess.run([str(venv_dir / 'bin' / 'python'), '-c', 'import mmengine, torch; print(mmengine.__file__)'],
                           capture_output=True, text=True)
    assert where.returncode == 0 and where.stdout.startswith(str(venv_dir)), where.stdout + where.stderr
