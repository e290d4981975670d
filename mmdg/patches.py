"""Every change mmdg makes to the behaviour of its dependencies, in one place, each with its reason.

:func:`apply` installs them all, once; ``mmdg.registry`` calls it, so every entry point that reaches an mmdg
registry (``default_scope='mmdg'``, ``custom_imports``, ``import mmdg.models``) runs with them. Each is
idempotent and :func:`applied` reports which are in place (the tests check every one).
"""
import copy
from typing import Callable, Dict, List, Tuple


def _checkpoint_loader() -> bool:
    """mmengine's loader of local checkpoints (``load_from``, ``resume``, ``init_model``): weights-only
    unpickling and one-line errors for truncated or foreign files (mmengine unpickles arbitrary code)."""
    from mmengine.runner.checkpoint import CheckpointLoader

    from mmdg.utils.checkpoint import load_local_checkpoint
    if CheckpointLoader._schemes.get('') is load_local_checkpoint:
        return False
    CheckpointLoader.register_scheme(prefixes='', force=True)(load_local_checkpoint)
    return True


def _atomic_local_backend() -> bool:
    """mmengine's local file backend writes checkpoints and ``last_checkpoint`` in place: a run killed while
    saving left a truncated file. Ours writes a temporary file and renames it."""
    from mmengine.fileio import register_backend
    from mmengine.fileio.backends import backends

    from mmdg.utils.checkpoint import AtomicLocalBackend
    if backends.get('local') is AtomicLocalBackend:
        return False
    register_backend('local', AtomicLocalBackend, force=True, prefixes='')
    return True


def _empty_dataset_message() -> bool:
    """mmengine packs a dataset's list when it is built and fails on an empty one with numpy's "need at least
    one array to concatenate", naming nothing: the error names the dataset and its folder instead."""
    from mmengine.dataset import BaseDataset

    from mmdg.engine.startup_check import serialize_nonempty
    if getattr(BaseDataset._serialize_data, '_mmdg', False):
        return False
    original = BaseDataset._serialize_data

    def _serialize_data(self):
        return serialize_nonempty(self, original)
    _serialize_data._mmdg = True
    BaseDataset._serialize_data = _serialize_data
    return True


def _deform_attn_bf16() -> bool:
    """mmcv's multi-scale deformable attention kernel (Mask2Former, DINO) has no bf16 CUDA path: under bf16
    autocast that one op runs in fp32 (see ``mmdg.models.mixed_precision``)."""
    from mmdg.models.mixed_precision import deform_attn_bf16_as_fp32
    return deform_attn_bf16_as_fp32()


def _mmdet_test_pipeline() -> bool:
    """mmdet's ``inference_detector`` / ``init_detector`` find a config's test pipeline through the dataset
    wrappers they know (``dataset`` / ``datasets``); mmdg's ``MultiDomainDataset`` keeps its domains under
    ``domains``, so they stopped with "Cannot find `pipeline` in `test_dataloader`": the first domain's is used."""
    import mmdet.apis.inference as inference
    import mmdet.utils as utils
    from mmdet.utils import misc
    original = misc.get_test_pipeline_cfg
    if getattr(utils.get_test_pipeline_cfg, '_mmdg', False):
        return False

    def get_test_pipeline_cfg(cfg):
        from mmengine.config import Config
        if isinstance(cfg, str):
            cfg = Config.fromfile(cfg)
        from mmdg.apis.inference import first_pipeline
        pipeline = first_pipeline(cfg.test_dataloader.dataset)
        if pipeline:  # a copy: mmdet edits the first step in place for arrays
            return copy.deepcopy(pipeline)
        return original(cfg)
    get_test_pipeline_cfg._mmdg = True
    for module in (misc, utils, inference):
        module.get_test_pipeline_cfg = get_test_pipeline_cfg
    return True


#: (name, function) in the order they are applied.
PATCHES: List[Tuple[str, Callable[[], bool]]] = [
    ('checkpoint_loader', _checkpoint_loader),
    ('atomic_local_backend', _atomic_local_backend),
    ('empty_dataset_message', _empty_dataset_message),
    ('deform_attn_bf16', _deform_attn_bf16),
    ('mmdet_test_pipeline', _mmdet_test_pipeline),
]


def apply() -> Dict[str, bool]:
    """Install every patch not yet in place; returns name -> whether it was installed by this call."""
    return {name: fn() for name, fn in PATCHES}


def applied() -> Dict[str, bool]:
    """Name -> whether the patch is in place now (without installing anything)."""
    from mmcv.ops.multi_scale_deform_attn import MultiScaleDeformableAttnFunction
    from mmengine.dataset import BaseDataset
    from mmengine.fileio.backends import backends
    from mmengine.runner.checkpoint import CheckpointLoader

    import mmdet.apis.inference as mmdet_inference

    from mmdg.utils.checkpoint import AtomicLocalBackend, load_local_checkpoint
    return dict(checkpoint_loader=CheckpointLoader._schemes.get('') is load_local_checkpoint,
                atomic_local_backend=backends.get('local') is AtomicLocalBackend,
                empty_dataset_message=getattr(BaseDataset._serialize_data, '_mmdg', False),
                deform_attn_bf16=getattr(MultiScaleDeformableAttnFunction, '_mmdg_bf16_as_fp32', False),
                mmdet_test_pipeline=getattr(mmdet_inference.get_test_pipeline_cfg, '_mmdg', False))
