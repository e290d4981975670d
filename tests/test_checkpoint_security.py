"""Checkpoints load under torch's weights_only default; code-carrying pickles are refused."""
import os

import numpy as np
import pytest
import torch
from mmengine.logging import HistoryBuffer, MessageHub
from mmengine.runner.checkpoint import CheckpointLoader, _load_checkpoint

import mmdg.registry  # noqa: F401  (installs the safe loader, as any mmdg config does)
from mmdg.utils.checkpoint import CheckpointError, UnsafeCheckpointError, atomic_save


class _RunsCode:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f'touch {self.marker}',))


def test_mmengine_style_checkpoint_loads_with_weights_only(tmp_path):
    hub = MessageHub.get_instance('test_ckpt')
    hub.update_scalar('train/loss', 1.5)
    hub.update_scalar('train/loss', np.float64(0.7))
    hub.update_info('iter', np.int64(3))
    ckpt = dict(meta=dict(iter=3, seed=np.int64(0), mmengine_version='0.10.7', dataset_meta=dict(classes=('a',))),
                state_dict=dict(w=torch.ones(2)), message_hub=hub.state_dict(),
                extra=dict(arr=np.arange(3, dtype=np.float32)))
    path = tmp_path / 'iter_3.pth'
    torch.save(ckpt, path)
    with pytest.raises(Exception):  # torch's own default refuses it: the trap this fixes
        torch.load(path)
    loaded = _load_checkpoint(str(path), map_location='cpu')
    assert isinstance(loaded['message_hub']['log_scalars']['train/loss'], HistoryBuffer)
    assert loaded['meta']['iter'] == 3 and torch.equal(loaded['state_dict']['w'], torch.ones(2))


def test_pickle_that_carries_code_is_refused(tmp_path):
    marker = tmp_path / 'pwned'
    path = tmp_path / 'evil.pth'
    torch.save(dict(state_dict=dict(w=torch.ones(1)), payload=_RunsCode(marker)), path)
    with pytest.raises(UnsafeCheckpointError, match=r'refusing to load checkpoint .*evil\.pth.*system'):
        CheckpointLoader.load_checkpoint(str(path), map_location='cpu')
    assert not marker.exists(), 'the payload must never run'


def test_truncated_and_missing_checkpoints(tmp_path):
    good = tmp_path / 'good.pth'
    torch.save(dict(state_dict=dict(w=torch.randn(1000))), good)
    cut = tmp_path / 'cut.pth'
    cut.write_bytes(good.read_bytes()[:500])
    with pytest.raises(CheckpointError, match='truncated or not a PyTorch checkpoint'):
        _load_checkpoint(str(cut))
    with pytest.raises(FileNotFoundError, match='can not be found'):
        _load_checkpoint(str(tmp_path / 'nope.pth'))


def test_atomic_save_leaves_no_partial_file(tmp_path):
    path = tmp_path / 'ckpt.pth'
    atomic_save(dict(a=torch.ones(1)), str(path))
    with pytest.raises(Exception):
        atomic_save(dict(bad=lambda: 0), str(path))  # unpicklable: the save fails half-way
    assert torch.equal(torch.load(path)['a'], torch.ones(1)), 'the previous file must survive'
    assert sorted(p.name for p in tmp_path.iterdir()) == ['ckpt.pth']
