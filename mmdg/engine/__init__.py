from mmdg.utils.checkpoint import CheckpointError, UnsafeCheckpointError, safe_torch_load

from .hooks import (AdapterAuxLossHook, AdapterCheckpointHook, CheckpointDigestHook, CheckpointFitHook,
                    NonFiniteLossError, NonFiniteLossHook, RNGStateCheckpointHook, WeightDecayLoggerHook)
from .fsdp import FSDP2Strategy
from .optim import ZERO_DECAY_KEYS, AnnealedWeightDecay, DGOptimWrapperConstructor
from .startup_check import DataModelCheckHook, DataModelError

__all__ = ['CheckpointError', 'UnsafeCheckpointError', 'safe_torch_load', 'AdapterAuxLossHook', 'AdapterCheckpointHook',
           'WeightDecayLoggerHook', 'CheckpointDigestHook', 'CheckpointFitHook', 'NonFiniteLossHook', 'NonFiniteLossError', 'RNGStateCheckpointHook',
           'DataModelCheckHook', 'DataModelError', 'FSDP2Strategy', 'DGOptimWrapperConstructor', 'AnnealedWeightDecay', 'ZERO_DECAY_KEYS']
