"""The launch scripts: which python they run (``$PYTHON``, else the repository's ``.venv``, never a bare
``python`` on PATH), ``--cpu-ddp``, the Slurm scripts' srun line, and ``--launcher pytorch`` without CUDA
stopping with one line unless CPU processes were asked for. The scripts run for real against stub
interpreters / a stub ``srun`` that record what they were called with (the 2-process gloo run itself is
in test_distributed.py)."""
import os
import shutil
import subprocess
import sys

import pytest

from conftest import REPO

pytestmark = [pytest.mark.slow, pytest.mark.cli]

STUB = '''#!/usr/bin/env bash
{
  echo "exe=$0"
  echo "cpu_ddp=${MMDG_CPU_DDP:-}"
  for a in "$@"; do echo "arg=$a"; done
} > "$RECORD"
'''


def _fake_repo(tmp_path, with_venv=True):
    """A copy of the launch scripts in a repository of their own, with a stub .venv python."""
    root = tmp_path / 'repo'
    (root / 'tools').mkdir(parents=True)
    for name in ('dist_train.sh', 'dist_test.sh', 'slurm_train.sh', 'slurm_test.sh'):
        shutil.copy(os.path.join(REPO, 'tools', name), root / 'tools' / name)
    if with_venv:
        (root / '.venv' / 'bin').mkdir(parents=True)
        _stub(root / '.venv' / 'bin' / 'python')
    return root


def _stub(path):
    path.write_text(STUB)
    path.chmod(0o755)
    return path


def _run(root, script, args, tmp_path, **env):
    record = tmp_path / 'record.txt'
    bad = tmp_path / 'badbin'
    bad.mkdir(exist_ok=True)
    # a `python` first on PATH that must never be the one called
    (bad / 'python').write_text('#!/bin/sh\necho "wrong python" >&2; exit 99\n')
    (bad / 'python').chmod(0o755)
    full_env = {k: v for k, v in os.environ.items() if k not in ('PYTHON', 'MMDG_CPU_DDP')}
    full_env.update(PATH=f'{bad}{os.pathsep}{os.environ["PATH"]}', RECORD=str(record))
    full_env.update(env)
    res = subprocess.run(['bash', str(root / 'tools' / script), *args], env=full_env, capture_output=True,
                         text=True, timeout=30)
    assert res.returncode == 0, res.stderr
    lines = record.read_text().splitlines()
    exe = lines[0].split('=', 1)[1]
    cpu = lines[1].split('=', 1)[1]
    return exe, cpu, [line.split('=', 1)[1] for line in lines[2:]]


def test_dist_scripts_use_the_repository_venv(tmp_path):
    root = _fake_repo(tmp_path)
    exe, cpu, args = _run(root, 'dist_train.sh', ['cfg.py', '2', '--resume'], tmp_path)
    assert exe == str(root / '.venv' / 'bin' / 'python')
    assert args[:2] == ['-m', 'torch.distributed.run'] and '--nproc_per_node=2' in args
    assert args[-5:] == [str(root / 'tools' / 'train.py'), 'cfg.py', '--launcher', 'pytorch', '--resume']
    assert cpu == ''
    exe, _, args = _run(root, 'dist_test.sh', ['cfg.py', 'ckpt.pth', '3'], tmp_path)
    assert exe == str(root / '.venv' / 'bin' / 'python')
    assert args[-5:] == [str(root / 'tools' / 'test.py'), 'cfg.py', 'ckpt.pth', '--launcher', 'pytorch']
    assert '--nproc_per_node=3' in args


def test_python_env_wins_and_cpu_ddp_flag(tmp_path):
    root = _fake_repo(tmp_path)
    mine = _stub(tmp_path / 'my_python')
    exe, cpu, args = _run(root, 'dist_train.sh', ['cfg.py', '2', '--cpu-ddp', '--work-dir', 'w'], tmp_path,
                          PYTHON=str(mine))
    assert exe == str(mine)
    assert cpu == '1' and '--cpu-ddp' not in args  # turned into the env every process reads
    assert args[-3:] == ['pytorch', '--work-dir', 'w']
    exe, cpu, args = _run(root, 'dist_test.sh', ['cfg.py', 'c.pth', '2', '--cpu-ddp'], tmp_path, PYTHON=str(mine))
    assert cpu == '1' and args[-1] == 'pytorch'


def test_without_venv_falls_back_to_python3(tmp_path):
    root = _fake_repo(tmp_path, with_venv=False)
    bin_dir = tmp_path / 'py3bin'
    bin_dir.mkdir()
    _stub(bin_dir / 'python3')
    exe, _, _ = _run(root, 'dist_train.sh', ['cfg.py', '1'], tmp_path,
                     PATH=f'{tmp_path / "badbin"}{os.pathsep}{bin_dir}{os.pathsep}{os.environ["PATH"]}')
    assert exe == str(bin_dir / 'python3')


def test_slurm_scripts_call_srun_mmseg_style(tmp_path):
    root = _fake_repo(tmp_path)
    srun = _stub(tmp_path / 'srun')
    exe, _, args = _run(root, 'slurm_train.sh', ['gpu', 'job1', 'cfg.py', 'work', '--resume'], tmp_path,
                        SRUN=str(srun), GPUS='16', CPUS_PER_TASK='4', SRUN_ARGS='--qos=high --time=1:00:00')
    assert exe == str(srun)
    for want in ('-p', 'gpu', '--job-name=job1', '--gres=gpu:8', '--ntasks=16', '--ntasks-per-node=8',
                 '--cpus-per-task=4', '--qos=high', '--time=1:00:00'):
        assert want in args, (want, args)
    i = args.index(str(root / '.venv' / 'bin' / 'python'))
    assert args[i + 1:] == ['-u', str(root / 'tools' / 'train.py'), 'cfg.py', '--work-dir', 'work',
                            '--launcher', 'slurm', '--resume']
    exe, _, args = _run(root, 'slurm_test.sh', ['gpu', 'job2', 'cfg.py', 'c.pth', '--out', 'o'], tmp_path,
                        SRUN=str(srun), GPUS='2')
    assert '--gres=gpu:2' in args and '--ntasks=2' in args and '--ntasks-per-node=2' in args
    assert args[-7:] == [str(root / 'tools' / 'test.py'), 'cfg.py', 'c.pth', '--launcher', 'slurm', '--out', 'o']


@pytest.mark.parametrize('script,args', [('dist_train.sh', []), ('dist_test.sh', ['c.pth']),
                                          ('slurm_train.sh', ['p', 'j']), ('slurm_test.sh', ['p', 'j', 'c.pth'])])
def test_usage_on_missing_arguments(script, args):
    res = subprocess.run(['bash', os.path.join(REPO, 'tools', script), *args], capture_output=True, text=True)
    assert res.returncode == 2 and 'usage:' in res.stderr


def test_pytorch_launcher_without_cuda_needs_to_be_asked(tmp_path):
    """No CUDA and no MMDG_CPU_DDP: one line naming the switch, no silent CPU run."""
    env = {k: v for k, v in os.environ.items() if k != 'MMDG_CPU_DDP'}
    env.update(CUDA_VISIBLE_DEVICES='', RANK='0', LOCAL_RANK='0', WORLD_SIZE='1', MASTER_ADDR='127.0.0.1',
               MASTER_PORT='29999')
    res = subprocess.run([sys.executable, 'tools/train.py', 'configs/demo/full.py', '--launcher', 'pytorch',
                          '--work-dir', str(tmp_path / 'w')], cwd=REPO, env=env, capture_output=True, text=True,
                         timeout=120)
    assert res.returncode != 0
    err = res.stderr.strip().splitlines()
    assert len(err) == 1 and 'MMDG_CPU_DDP=1' in err[0] and '--cpu-ddp' in err[0], res.stderr[-2000:]
    assert not (tmp_path / 'w').exists() or not any((tmp_path / 'w').rglob('*.pth'))


def test_setup_cpu_distributed_honours_the_switch(monkeypatch):
    import torch
    from mmengine.config import Config
    from mmdg.utils.tool_config import setup_cpu_distributed
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: False)
    monkeypatch.delenv('MMDG_CPU_DDP', raising=False)
    with pytest.raises(SystemExit, match='MMDG_CPU_DDP=1'):
        setup_cpu_distributed(Config(dict(launcher='pytorch')))
    cfg = Config(dict(launcher='none'))
    assert setup_cpu_distributed(cfg) is cfg  # a single process never needs the switch
    monkeypatch.setenv('MMDG_CPU_DDP', '1')
    monkeypatch.setattr(torch.distributed, 'is_initialized', lambda: True)  # no process group in this test
    cfg = setup_cpu_distributed(Config(dict(launcher='pytorch')))
    assert cfg.env_cfg.dist_cfg.backend == 'gloo' and cfg.model_wrapper_cfg.device_ids is None


# --- packaging ---------------------------------------------------------------------------------------

def test_one_version_source_read_without_torch():
    """setup.py reads mmdg/version.py as text: it works in an interpreter where torch cannot import."""
    import re
    import mmdg
    from mmdg.version import __version__
    assert mmdg.__version__ == __version__
    assert not re.search(r"version\s*=\s*['\"]\d", open(os.path.join(REPO, 'setup.py')).read())
    code = ("import sys; sys.modules['torch'] = None; sys.argv = ['setup.py', '--version']; "
            "import runpy; runpy.run_path('setup.py', run_name='__main__')")
    res = subprocess.run([sys.executable, '-c', code], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert res.returncode == 0 and res.stdout.strip().splitlines()[-1] == __version__, res.stderr[-2000:]


def test_license_changelog_contributing_and_docs_index():
    text = open(os.path.join(REPO, 'LICENSE')).read()
    assert 'Apache License' in text and 'Version 2.0, January 2004' in text and 'END OF TERMS AND CONDITIONS' in text
    from mmdg.version import __version__
    assert f'[{__version__}]' in open(os.path.join(REPO, 'CHANGELOG.md')).read()
    contributing = open(os.path.join(REPO, 'CONTRIBUTING.md')).read()
    for section in ('## Set-up and tests', '## Adding a tuning method', '## Adding a dataset'):
        assert section in contributing
    readme = open(os.path.join(REPO, 'README.md')).read()
    index = readme.split('## Documentation', 1)[1].split('\n## ', 1)[0]
    docs = sorted(f for f in os.listdir(os.path.join(REPO, 'docs')) if f.endswith('.md'))
    missing = [d for d in docs if f'(docs/{d})' not in index]
    assert not missing, f'docs missing from the README index: {missing}'


def test_dist_scripts_without_cuda_refuse_in_one_line_before_torchrun(tmp_path):
    """Without --cpu-ddp on a machine without CUDA, the refusal was the last of ~40 lines of torchrun's failure
    report; now the script says it before starting torchrun."""
    import torch
    if torch.cuda.is_available():
        pytest.skip('the refusal is for machines without a GPU')
    env = {k: v for k, v in os.environ.items() if k != 'MMDG_CPU_DDP'}
    for script, args in (('dist_train.sh', ['configs/demo/sora.py', '2']),
                         ('dist_test.sh', ['configs/demo/sora.py', 'none.pth', '2'])):
        res = subprocess.run(['bash', f'tools/{script}', *args], cwd=REPO, env=env, capture_output=True, text=True,
                             timeout=120)
        lines = [line for line in res.stderr.splitlines() if line.strip()]
        assert res.returncode == 1 and len(lines) == 1 and '--cpu-ddp' in lines[0], res.stderr[-2000:]
