"""Low-rank adapters for ViTs, in plain PyTorch (no OpenMMLab import).

    >>> import timm
    >>> from mmdg.adapters import inject_adapters, merge_adapters
    >>> vit = timm.create_model('vit_small_patch14_dinov2', pretrained=False, img_size=224)
    >>> inject_adapters(vit, dict(type='SoRA', r=16, alpha=16, blocks=(4, 12)))  # after loading weights
    >>> ...  # train
    >>> merge_adapters(vit)  # a plain timm model again
"""
# The built-in methods register themselves (@register_adapter) on import: this order is the registry's,
# which every list of methods (docs tables, demos, benchmarks) follows.
from . import lora, sora, pissa, alore, hta, clora, rein  # noqa: F401,E401,I001  isort: skip
from .alore import ALoRELinear
from .base import AdapterLinear, BlockAdapter, LowRankLinear, register_adapter
from .clora import CLoRALinear
from .hta import HTALinear
from .inject import (ADAPTERS, adapter_class, adapter_modules, aux_losses, count_parameters, find_blocks,
                     inject_adapters, merge_adapters, resolve_config, trainable_parameter_names,
                     trainable_state_dict)
from .lora import LoRALinear
from .pissa import PiSSALinear
from .rein import ReinBlock, ReinShared
from .sora import SoRALinear

__all__ = [
    'ADAPTERS', 'AdapterLinear', 'BlockAdapter', 'register_adapter', 'LowRankLinear', 'LoRALinear',
    'PiSSALinear', 'SoRALinear', 'ALoRELinear',
    'HTALinear', 'CLoRALinear', 'ReinBlock', 'ReinShared', 'inject_adapters', 'merge_adapters', 'aux_losses', 'adapter_modules',
    'adapter_class', 'resolve_config', 'find_blocks', 'trainable_parameter_names', 'trainable_state_dict',
    'count_parameters',
]
