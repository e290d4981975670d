"""Optimizer construction for adapted and partially frozen ViTs."""
from typing import List, Optional

from mmengine.optim import DefaultOptimWrapperConstructor
from torch import nn

from mmdg.registry import OPTIM_WRAPPER_CONSTRUCTORS


@OPTIM_WRAPPER_CONSTRUCTORS.register_module()
class DGOptimWrapperConstructor(DefaultOptimWrapperConstructor):
    """mmengine's constructor (``paramwise_cfg``: ``custom_keys`` lr / decay multipliers, norm and bias
    decay, ...) with two changes:

    - parameters that do not require gradients (frozen blocks, frozen backbone, adapted weights) are left
      out of the optimizer instead of being handed to it;
    - a parameter shared by several modules (ALoRE's ``S``, CLoRA's bases) enters once, in the group of
      its first owner, where mmengine would put it in one group per owner and torch would refuse them.
    """

    def __init__(self, optim_wrapper_cfg: dict, paramwise_cfg: Optional[dict] = None):
        # mmengine skips add_params (and so our filtering) when paramwise_cfg is empty
        super().__init__(optim_wrapper_cfg, paramwise_cfg or dict(custom_keys={}))

    def add_params(self, params: List[dict], module: nn.Module, prefix: str = '', **kwargs) -> None:
        super().add_params(params, module, prefix, **kwargs)
        if prefix:  # the recursion into children; filter once, at the top
            return
        seen, kept = set(), []
        for group in params:
            p = group['params'][0]
            if p.requires_grad and id(p) not in seen:
                seen.add(id(p))
                kept.append(group)
        params[:] = kept
