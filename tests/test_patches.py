"""mmdg/patches.py: every change to the dependencies is in place once a registry is imported, idempotent,
and does what its reason says."""

import numpy as np
import pytest
import torch


def test_every_patch_is_applied_by_the_registry_and_only_once():
    import mmdg.registry  # noqa: F401  (what every entry point reaches)
    from mmdg import patches
    assert set(patches.applied()) == {name for name, _ in patches.PATCHES}
    assert all(patches.applied().values()), patches.applied()
    assert not any(patches.apply().values())  # a second apply installs nothing


def test_checkpoint_loader_is_weights_only_and_names_truncation(tmp_path):
    import mmdg.registry  # noqa: F401
    from mmengine.runner.checkpoint import CheckpointLoader

    from mmdg.utils.checkpoint import CheckpointError, UnsafeCheckpointError

    class Payload:
        def __reduce__(self):
            return (print, ('code ran',))
    evil = tmp_path / 'evil.pth'
    torch.save({'state_dict': {}, 'x': Payload()}, evil)
    with pytest.raises(UnsafeCheckpointError):
        CheckpointLoader.load_checkpoint(str(evil))
    good = tmp_path / 'good.pth'
    torch.save({'state_dict': {'w': torch.ones(3)}}, good)
    data = good.read_bytes()
    (tmp_path / 'cut.pth').write_bytes(data[:len(data) // 2])
    with pytest.raises(CheckpointError, match='truncated'):
        CheckpointLoader.load_checkpoint(str(tmp_path / 'cut.pth'))
    assert torch.equal(CheckpointLoader.load_checkpoint(str(good))['state_dict']['w'], torch.ones(3))


def test_local_backend_writes_atomically(tmp_path, monkeypatch):
    import mmdg.registry  # noqa: F401
    from mmengine.fileio import get_file_backend, put

    from mmdg.utils.checkpoint import AtomicLocalBackend
    path = tmp_path / 'iter_1.pth'
    assert isinstance(get_file_backend(str(path)), AtomicLocalBackend)
    put(b'old', str(path))

    def fail(*args):
        raise OSError(28, 'No space left on device')
    monkeypatch.setattr('os.fsync', fail)  # the write fails before the rename
    with pytest.raises(OSError):
        put(b'new content', str(path))
    assert path.read_bytes() == b'old' and sorted(p.name for p in tmp_path.iterdir()) == ['iter_1.pth']


def test_an_empty_dataset_is_named(tmp_path):
    import mmdg.registry  # noqa: F401
    from mmengine.dataset import BaseDataset

    from mmdg.engine.startup_check import DataModelError

    class Empty(BaseDataset):
        def load_data_list(self):
            return []
    with pytest.raises(DataModelError, match='the Empty dataset is empty'):
        Empty(data_root=str(tmp_path), serialize_data=True)


def test_deformable_attention_runs_bf16_in_fp32():
    import mmdg.registry  # noqa: F401
    from mmcv.ops.multi_scale_deform_attn import MultiScaleDeformableAttnFunction

    from mmdg.models.mixed_precision import run_in_fp32_for_bf16
    assert MultiScaleDeformableAttnFunction._mmdg_bf16_as_fp32

    seen = []

    class Fake:
        @staticmethod
        def apply(value, *rest):
            seen.append(value.dtype)
            return value * 2
    assert run_in_fp32_for_bf16(Fake) and not run_in_fp32_for_bf16(Fake)
    out = Fake.apply(torch.ones(2, dtype=torch.bfloat16), None, None, torch.zeros(1), torch.zeros(1), 64)
    assert seen == [torch.float32] and out.dtype == torch.bfloat16
    assert np.allclose(out.float().numpy(), 2)
