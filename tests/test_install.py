"""The installer's offline path and its mmcv build choice, through the real scripts."""
import os
import os.path as osp
import subprocess
import sys
import venv

import pytest

from conftest import REPO


def _run(cmd, env=None, **kw):
    # PIP_CONFIG_FILE=/dev/null: a machine-wide pip.conf (extra find-links, mirrors) must not feed the
    # offline installs under test.
    return subprocess.run(cmd, cwd=REPO, env=dict(os.environ, PIP_CONFIG_FILE=os.devnull, **(env or {})),
                          capture_output=True, text=True, **kw)


def test_wheelhouse_then_offline_install(tmp_path):
    """tools/wheelhouse.sh collects a requirement set; a fresh venv installs it with the index disabled."""
    reqs = tmp_path / 'reqs.txt'
    reqs.write_text('addict==2.4.0\n')  # one small pure-python wheel keeps the test fast
    house = tmp_path / 'house'
    res = _run(['bash', 'tools/wheelhouse.sh', str(house)], env=dict(REQUIREMENTS=str(reqs), PYTHON=sys.executable))
    if res.returncode and ('Could not find a version' in res.stderr or 'NewConnectionError' in res.stderr):
        pytest.skip('the package index is unreachable from this machine')
    assert res.returncode == 0, res.stderr
    assert any(f.startswith('addict-2.4.0') for f in os.listdir(house)), os.listdir(house)
    assert (house / 'requirements.lock.txt').read_text() == 'addict==2.4.0\n'

    env_dir = tmp_path / 'venv'
    venv.create(env_dir, with_pip=True)
    py = str(env_dir / 'bin' / 'python')
    # PIP_INDEX_URL pointing nowhere: any attempt to reach an index would fail the install.
    res = subprocess.run([py, '-m', 'pip', 'install', '--no-index', '--find-links', str(house), '-r', str(reqs)],
                         env=dict(os.environ, PIP_INDEX_URL='http://127.0.0.1:9/simple', PIP_CONFIG_FILE=os.devnull), capture_output=True,
                         text=True)
    assert res.returncode == 0, res.stderr
    assert subprocess.run([py, '-c', 'import addict'], capture_output=True).returncode == 0


def test_installer_refuses_bad_switches(tmp_path):
    res = _run(['bash', 'tools/install_env.sh'], env=dict(MMCV_OPS='gpu', VENV=str(tmp_path / 'v')))
    assert res.returncode == 2 and 'MMCV_OPS must be auto, cuda or cpu' in res.stderr
    res = _run(['bash', 'tools/install_env.sh'], env=dict(WHEELHOUSE=str(tmp_path / 'absent'), VENV=str(tmp_path / 'v')))
    assert res.returncode == 2 and 'is not a folder' in res.stderr
    assert not (tmp_path / 'v').exists()  # refused before anything was created


def test_installer_offline_uses_only_the_wheelhouse(tmp_path):
    """With WHEELHOUSE set every pip call is --no-index: an empty wheelhouse fails on the first requirement
    instead of reaching the network."""
    house = tmp_path / 'empty_house'
    house.mkdir()
    venv_dir = tmp_path / 'v'
    res = _run(['bash', 'tools/install_env.sh'], env=dict(WHEELHOUSE=str(house), VENV=str(venv_dir),
                                                          PYTHON=sys.executable, PIP_INDEX_URL='http://127.0.0.1:9/x'),
               timeout=300)
    assert res.returncode != 0
    assert 'offline install from' in res.stdout
    out = res.stdout + res.stderr
    assert 'No matching distribution' in out or 'Could not find a version' in out, out[-2000:]
    assert '127.0.0.1:9' not in out  # the index was never tried


# a compiler-only toolkit (cuda-nvcc without the math libraries' headers), as nvcc -E reports it
_NVCC_WITHOUT_CUBLAS = ('#!/bin/sh\necho "$2:2:10: fatal error: cublas_v2.h: No such file or directory" >&2\n'
                        'exit 1\n')


def _plan(tmp_path, mode, nvcc: bool, nvcc_script='#!/bin/sh\necho fake nvcc\n', **env):
    bin_dir = tmp_path / 'bin'
    bin_dir.mkdir(exist_ok=True)
    if nvcc:
        (bin_dir / 'nvcc').write_text(nvcc_script)
        (bin_dir / 'nvcc').chmod(0o755)
    path = f'{bin_dir}:/usr/bin:/bin'  # no system nvcc: only the fake one, when asked for
    return _run([sys.executable, 'tools/check_install.py', '--plan', mode],
                env=dict(dict(PATH=path, CUDA_HOME='', CUDA_PATH='', TORCH_CUDA_ARCH_LIST=''), **env))


def test_mmcv_ops_plan(tmp_path):
    """CUDA ops whenever torch is a CUDA build and nvcc exists; the cache key names torch, CUDA and the ops."""
    import torch
    cuda = torch.version.cuda
    res = _plan(tmp_path, 'auto', nvcc=False)
    assert res.returncode == 0 and res.stdout.split()[0] == 'cpu', res.stderr
    assert res.stdout.split()[2].endswith(f'_cuda-{cuda or "none"}_ops-cpu')
    res = _plan(tmp_path, 'auto', nvcc=True)
    if not cuda:
        assert res.stdout.split()[0] == 'cpu'
        return
    ops, archs, tag = res.stdout.split()
    assert ops == 'cuda' and archs == '8.0;8.6;8.9;9.0' and tag.endswith('_ops-cuda-8.0_8.6_8.9_9.0')
    ops, archs, tag = _plan(tmp_path, 'auto', nvcc=True, TORCH_CUDA_ARCH_LIST='9.0').stdout.split()
    assert archs == '9.0' and tag.endswith('_ops-cuda-9.0')
    assert _plan(tmp_path, 'cpu', nvcc=True).stdout.split()[0] == 'cpu'


def test_mmcv_ops_plan_probes_the_toolkit_headers(tmp_path):
    """An nvcc that cannot find cublas_v2.h would fail mmcv's build after minutes: auto builds CPU ops and
    says why, cuda refuses with the missing header named, cpu never asks nvcc."""
    import torch
    if not torch.version.cuda:
        pytest.skip('a CPU build of torch never probes nvcc')
    res = _plan(tmp_path, 'auto', nvcc=True, nvcc_script=_NVCC_WITHOUT_CUBLAS)
    assert res.returncode == 0 and res.stdout.split()[0] == 'cpu', res.stderr
    assert 'cannot build mmcv\'s CUDA ops (fatal error: cublas_v2.h: No such file' in res.stderr
    assert 'probe.cu' not in res.stderr  # the temporary file's name is noise
    res = _plan(tmp_path, 'cuda', nvcc=True, nvcc_script=_NVCC_WITHOUT_CUBLAS)
    assert res.returncode != 0 and 'MMCV_OPS=cuda but' in res.stderr and 'cublas_v2.h' in res.stderr
    res = _plan(tmp_path, 'cpu', nvcc=True, nvcc_script=_NVCC_WITHOUT_CUBLAS)
    assert res.returncode == 0 and res.stdout.split()[0] == 'cpu' and not res.stderr.strip()


def test_mmcv_ops_plan_refuses_cuda_without_nvcc(tmp_path):
    bare = tmp_path / 'bare'
    bare.mkdir()
    res = _run([sys.executable, 'tools/check_install.py', '--plan', 'cuda'],
               env=dict(PATH=f'{bare}:/usr/bin:/bin', CUDA_HOME='', CUDA_PATH=''))
    assert res.returncode != 0
    import torch
    expected = 'nvcc is neither on PATH' if torch.version.cuda else 'is a CPU build'
    assert expected in res.stderr, res.stderr


_FAKE_GPU = ("import sys, runpy, torch; torch.cuda.is_available = lambda: True; "
             "sys.argv = ['check_install.py', '--verify']; runpy.run_path('tools/check_install.py', run_name='__main__')")


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
