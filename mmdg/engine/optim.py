"""Optimizer construction and weight-decay annealing for adapted and partially frozen ViTs."""
from typing import List, Optional, Sequence

from mmengine.optim import DefaultOptimWrapperConstructor
from mmengine.optim.scheduler import CosineAnnealingParamScheduler
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm
from torch.nn.modules.instancenorm import _InstanceNorm

from mmdg.adapters.families import ZERO_DECAY
from mmdg.registry import OPTIM_WRAPPER_CONSTRUCTORS, PARAM_SCHEDULERS

#: Parameters that never get weight decay in the SoRA/Rein recipes: norms, each ViT family's tokens, position
#: embeddings and layer scales (``mmdg.adapters.families``), and the decoder's queries and level embeddings.
ZERO_DECAY_KEYS = ('norm', *ZERO_DECAY, 'query_embed', 'query_feat', 'level_embed')


NORM_TYPES = (_BatchNorm, _InstanceNorm, nn.GroupNorm, nn.LayerNorm, nn.LocalResponseNorm, nn.RMSNorm)


@OPTIM_WRAPPER_CONSTRUCTORS.register_module()
class DGOptimWrapperConstructor(DefaultOptimWrapperConstructor):
    """mmengine's constructor (``paramwise_cfg``: ``custom_keys`` lr / decay multipliers such as
    ``backbone=dict(lr_mult=0.5)``, ...) with three changes:

    - parameters that do not require gradients (frozen blocks, frozen backbone, adapted weights) are left
      out of the optimizer instead of being handed to it;
    - a parameter shared by several modules (ALoRE's ``S``, CLoRA's bases) enters once, in the group of
      its first owner, where mmengine would put it in one group per owner and torch would refuse them;
    - ``paramwise_cfg.zero_decay_keys``: parameters whose name contains one of these, and the parameters
      of every normalisation layer, get weight decay 0 *on top of* their custom key. (mmengine applies only the longest matching custom key, so
      ``backbone`` lr 0.5 and ``norm`` decay 0 could not both hold for ``backbone...norm1.weight``.)
    """

    def __init__(self, optim_wrapper_cfg: dict, paramwise_cfg: Optional[dict] = None):
        paramwise_cfg = dict(paramwise_cfg or {})
        self.zero_decay_keys: Sequence[str] = tuple(paramwise_cfg.pop('zero_decay_keys', ()))
        # mmengine skips add_params (and so our filtering) when paramwise_cfg is empty
        paramwise_cfg.setdefault('custom_keys', {})
        super().__init__(optim_wrapper_cfg, paramwise_cfg)

    def add_params(self, params: List[dict], module: nn.Module, prefix: str = '', **kwargs) -> None:
        super().add_params(params, module, prefix, **kwargs)
        if prefix:  # the recursion into children; finish once, at the top
            return
        names = {}
        for name, p in module.named_parameters(remove_duplicate=False):
            names.setdefault(id(p), name)
        norm_params = {id(p) for m in module.modules() if isinstance(m, NORM_TYPES) for p in m.parameters()}
        seen, kept = set(), []
        for group in params:
            p = group['params'][0]
            if not p.requires_grad or id(p) in seen:
                continue
            seen.add(id(p))
            if self.zero_decay_keys and (id(p) in norm_params or any(k in names[id(p)] for k in self.zero_decay_keys)):
                group['weight_decay'] = 0.0
            kept.append(group)
        params[:] = kept


@PARAM_SCHEDULERS.register_module()
class AnnealedWeightDecay(CosineAnnealingParamScheduler):
    """SoRA's annealed weight decay: each group's decay follows a per-iteration cosine from its base
    value to ``eta_min`` over ``[begin, end)``.

    ``wd_t = eta_min + (wd_0 - eta_min) * (1 + cos(pi * t / T)) / 2``.

    ``keep_zero=True`` (ours): groups whose base decay is 0 (norms, embeddings, queries) stay at 0, as
    their zero decay intends. ``keep_zero=False`` reproduces the official recipe, whose plain
    ``CosineAnnealingParamScheduler`` moves them from 0 up towards ``eta_min``.
    """

    def __init__(self, optimizer, eta_min: float = 1e-5, by_epoch: bool = False, keep_zero: bool = True,
                 **kwargs):
        self.keep_zero = keep_zero
        super().__init__(optimizer, param_name='weight_decay', eta_min=eta_min, by_epoch=by_epoch, **kwargs)

    def _get_value(self):
        values = super()._get_value()
        if not self.keep_zero:
            return values
        return [0.0 if base == 0 else v for base, v in zip(self.base_values, values)]
