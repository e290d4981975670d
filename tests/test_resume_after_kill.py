"""A run killed with SIGKILL resumes (``tools/train.py --resume``) and ends with exactly the weights of an
uninterrupted run; a kill while a checkpoint is being written leaves no corrupt file behind."""
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from conftest import REPO
from mmdg.apis.demo import demo_config

pytestmark = [pytest.mark.slow, pytest.mark.cli]

MAX_ITERS, INTERVAL = 16, 4
ENV = {**os.environ, 'OMP_NUM_THREADS': '1', 'MKL_NUM_THREADS': '1'}  # same kernels in every process


def _config(tmp_path, demo_data):
    # LoRA on the demo ViT; the head's dropout (0.1) draws from torch's generator, which resume must restore
    cfg = demo_config('lora', data_root=demo_data, max_iters=MAX_ITERS, num_workers=0)
    cfg.train_dataloader.batch_size = 2
    cfg.default_hooks.checkpoint.update(interval=INTERVAL, max_keep_ckpts=-1)
    cfg.train_cfg.val_begin = MAX_ITERS + 1  # no validation: only training state matters here
    path = str(tmp_path / 'cfg.py')
    cfg.dump(path)
    return path


def _train(cfg, work, *extra):
    return [sys.executable, 'tools/train.py', cfg, '--work-dir', str(work), *extra]


def test_sigkill_then_resume_gives_the_uninterrupted_weights(tmp_path, demo_data):
    cfg = _config(tmp_path, demo_data)
    straight, killed = tmp_path / 'straight', tmp_path / 'killed'
    res = subprocess.run(_train(cfg, straight), cwd=REPO, env=ENV, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]

    proc = subprocess.Popen(_train(cfg, killed), cwd=REPO, env=ENV, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    pointer = killed / 'last_checkpoint'
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None:
        if pointer.exists() and pointer.read_text().strip():
            break
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, 'the run ended before it could be killed'
    assert not (killed / f'iter_{MAX_ITERS}.pth').exists()
    done = sorted(p.name for p in killed.glob('iter_*.pth'))
    assert done and len(done) < MAX_ITERS // INTERVAL

    res = subprocess.run(_train(cfg, killed, '--resume'), cwd=REPO, env=ENV, capture_output=True, text=True,
                         timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    assert 'resuming from' in res.stdout and 'torch random state restored' in res.stdout + res.stderr
    a = torch.load(straight / f'iter_{MAX_ITERS}.pth', weights_only=False)
    b = torch.load(killed / f'iter_{MAX_ITERS}.pth', weights_only=False)
    assert a['meta']['iter'] == b['meta']['iter'] == MAX_ITERS
    assert a['state_dict'].keys() == b['state_dict'].keys()
    for k, v in a['state_dict'].items():
        torch.testing.assert_close(b['state_dict'][k], v, rtol=0, atol=0, msg=lambda m: f'{k}: {m}')
    # the optimizer state too: a later iteration would diverge otherwise
    sa, sb = a['optimizer']['state'], b['optimizer']['state']
    assert sa.keys() == sb.keys()
    for i in sa:
        torch.testing.assert_close(sb[i]['exp_avg'], sa[i]['exp_avg'], rtol=0, atol=0)


_SAVER = """
import torch
import mmdg.registry  # installs mmdg's patches: the atomic writer for mmengine's local files among them
from mmengine.runner.checkpoint import save_checkpoint
path = {path!r}
save_checkpoint(dict(state_dict=dict(w=torch.zeros(4)), meta=dict(n=0)), path)
print('ready', flush=True)
big = dict(state_dict=dict(w=torch.randn(64, 1024, 1024)), meta=dict(n=1))  # 256 MiB: a long write
while True:
    save_checkpoint(big, path)
"""


def test_kill_while_saving_leaves_a_whole_checkpoint(tmp_path):
    """SIGKILL lands while mmengine's save_checkpoint writes (through mmdg's backend): the file under the
    checkpoint's name is the old or the new one, whole; no temporary file is left to be mistaken for it."""
    from mmdg.utils.checkpoint import is_complete_checkpoint, safe_torch_load
    path = str(tmp_path / 'iter_8.pth')
    proc = subprocess.Popen([sys.executable, '-c', _SAVER.format(path=path)], stdout=subprocess.PIPE,
                            text=True)
    line = ''
    while line != 'ready' and proc.poll() is None:  # mmengine may print warnings first
        line = proc.stdout.readline().strip()
    assert line == 'ready'
    time.sleep(1.5)  # well inside a 256 MiB write on this machine
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert is_complete_checkpoint(path)
    assert safe_torch_load(path)['meta']['n'] in (0, 1)
    assert [p.name for p in tmp_path.iterdir() if p.name != 'iter_8.pth' and not p.name.startswith('.mmdg-tmp-')] == []


def test_resume_skips_a_checkpoint_cut_short(tmp_path):
    """A work dir left by an older writer: the pointer names a truncated file, so the newest whole
    checkpoint before it is chosen."""
    from mmdg.utils.checkpoint import atomic_save, find_resumable_checkpoint
    atomic_save(dict(state_dict=dict(w=torch.zeros(2))), str(tmp_path / 'iter_4.pth'))
    atomic_save(dict(state_dict=dict(w=torch.zeros(2000))), str(tmp_path / 'iter_8.pth'))
    data = (tmp_path / 'iter_8.pth').read_bytes()
    (tmp_path / 'iter_8.pth').write_bytes(data[:len(data) // 2])
    (tmp_path / 'last_checkpoint').write_text(str(tmp_path / 'iter_8.pth'))
    assert find_resumable_checkpoint(str(tmp_path)) == str(tmp_path / 'iter_4.pth')
    (tmp_path / 'last_checkpoint').write_text('')  # a pointer cut short
    assert find_resumable_checkpoint(str(tmp_path)) == str(tmp_path / 'iter_4.pth')
    assert find_resumable_checkpoint(str(tmp_path / 'empty')) is None
