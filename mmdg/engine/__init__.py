from mmdg.utils.checkpoint import CheckpointError, UnsafeCheckpointError, safe_torch_load

from .hooks import AdapterAuxLossHook, AdapterCheckpointHook
from .optim import DGOptimWrapperConstructor

__all__ = ['CheckpointError', 'UnsafeCheckpointError', 'safe_torch_load', 'AdapterAuxLossHook', 'AdapterCheckpointHook',
           'DGOptimWrapperConstructor']
