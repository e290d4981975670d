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


def _corrupt_tensor_bytes(path, pattern: bytes):
    """Flip one byte inside a tensor's stored data, leaving the zip archive readable (as a disk error does)."""
    data = bytearray(open(path, 'rb').read())
    at = data.index(pattern)
    data[at] ^= 0xFF
    open(path, 'wb').write(bytes(data))


def test_content_digest_catches_changed_bytes_and_resume_skips_them(tmp_path, capsys):
    """The probe: a checkpoint whose tensor bytes changed loaded and scored (mIoU 2.55 instead of 10.13), and
    --resume called it "the last good checkpoint". Now the digest written with it stops every mmdg loader, and
    --resume takes the newest checkpoint that verifies, saying which it skipped."""
    from mmdg.engine import CheckpointDigestHook
    from mmdg.utils.checkpoint import DIGEST_KEY, find_resumable_checkpoint, is_complete_checkpoint, safe_torch_load
    for it, value in ((1, 7.0), (2, 9.0)):
        ckpt = dict(state_dict=dict(w=torch.full((4096,), value)), meta=dict(iter=it))
        CheckpointDigestHook().before_save_checkpoint(None, ckpt)
        assert len(ckpt['meta'][DIGEST_KEY]) == 64
        torch.save(ckpt, tmp_path / f'iter_{it}.pth')
    _corrupt_tensor_bytes(tmp_path / 'iter_2.pth', torch.full((64,), 9.0).numpy().tobytes())
    assert is_complete_checkpoint(str(tmp_path / 'iter_2.pth'))  # the archive itself is fine
    with pytest.raises(CheckpointError, match='corrupt: its weights do not match the content digest'):
        safe_torch_load(str(tmp_path / 'iter_2.pth'))
    with pytest.raises(CheckpointError, match='content digest'):  # load_from / init_model go through it too
        CheckpointLoader.load_checkpoint(str(tmp_path / 'iter_2.pth'))
    assert find_resumable_checkpoint(str(tmp_path)) == str(tmp_path / 'iter_1.pth')
    assert 'skipping' in capsys.readouterr().out
    plain = tmp_path / 'other.pth'  # a file from elsewhere carries no digest: loads as before
    torch.save(dict(state_dict=dict(w=torch.ones(2))), plain)
    assert torch.equal(safe_torch_load(str(plain))['state_dict']['w'], torch.ones(2))


@pytest.mark.tool
def test_training_writes_the_digest_and_the_method(tmp_path, demo_data, run_tool):
    """tools/train.py adds CheckpointDigestHook: its checkpoints carry the digest and the tuning method, which
    a config of another method refuses (a LoRA checkpoint scored 4.53 with a PiSSA config: keys and shapes
    match)."""
    from mmdg.apis.demo import demo_config
    from mmdg.utils.checkpoint import DIGEST_KEY, content_digest
    cfg = demo_config('lora', data_root=demo_data, work_dir=str(tmp_path / 'work'), max_iters=1, num_workers=0)
    cfg.train_dataloader.batch_size = 2
    cfg.dump(str(tmp_path / 'cfg.py'))
    res = run_tool('train.py', tmp_path / 'cfg.py')
    assert res.returncode == 0, res.stderr[-2000:]
    ckpt = torch.load(tmp_path / 'work' / 'iter_1.pth', weights_only=False)
    assert ckpt['meta'][DIGEST_KEY] == content_digest(ckpt)
    # the method is recorded: a PiSSA config (the same keys and shapes as LoRA's) refuses the LoRA checkpoint
    from mmengine.config import Config

    from mmdg.utils.checkpoint import fit_config_to_checkpoint
    assert ckpt['meta']['mmdg_method'] == 'LoRA'
    pissa = Config.fromfile(os.path.join(os.path.dirname(os.path.dirname(__file__)), 'configs', 'demo', 'pissa.py'))
    with pytest.raises(CheckpointError, match='was trained with LoRA, but the config builds PiSSA'):
        fit_config_to_checkpoint(pissa.model, ckpt, 'iter_1.pth')
    res = run_tool('test.py', 'configs/demo/pissa.py', tmp_path / 'work' / 'iter_1.pth', '--work-dir', tmp_path / 't')
    assert res.returncode == 1 and 'was trained with LoRA, but the config builds PiSSA' in res.stderr


@pytest.mark.tool
def test_a_checkpoint_that_does_not_cover_the_model_is_refused(demo_model, demo_data, tmp_path, run_tool):
    """The probe: an adapter-only checkpoint re-saved as a bare state dict, or {'state_dict': {}}, evaluated a
    randomly initialised backbone (mIoU 0.83 / 0.66); `load_from` of another architecture trained from scratch
    after 127 warnings. Each stops now, naming weights the model expects and the file lacks."""
    config, ckpt, _ = demo_model
    full = torch.load(ckpt, weights_only=False)['state_dict']
    head_only = {k: v for k, v in full.items() if not k.startswith('backbone.')}  # a bare partial state dict
    for name, content in (('bare.pth', head_only), ('empty.pth', dict(state_dict={}))):
        torch.save(content, tmp_path / name)
        res = run_tool('test.py', config, tmp_path / name, '--work-dir', tmp_path / 'w')
        assert res.returncode == 1 and 'weights this model' in res.stderr and 'would stay random' in res.stderr, \
            res.stderr[-2000:]
    # training from a checkpoint of another architecture (a detector's weights for a segmentor)
    from mmdg.apis.demo import demo_config
    other = tmp_path / 'other.pth'
    torch.save(dict(state_dict={'neck.conv.weight': torch.zeros(2, 2), **head_only}), other)
    cfg = demo_config('lora', data_root=demo_data, work_dir=str(tmp_path / 'tw'), max_iters=1, num_workers=0)
    cfg.load_from = str(other)
    cfg.dump(str(tmp_path / 'cfg.py'))
    res = run_tool('train.py', tmp_path / 'cfg.py')
    assert res.returncode == 1 and "key(s) the model does not have, e.g. ['neck.conv.weight']" in res.stderr, \
        res.stderr[-2000:]
    assert not list((tmp_path / 'tw').glob('iter_*.pth'))  # nothing trained
