"""HTA (Dong et al., NeurIPS 2024): Householder-transformation adaptation.

``dW = H(v_l) diag(d) H(v_r) + W_down W_up`` with ``H(v) = I - 2 v v^T / |v|^2``, a learned (for
rectangular layers, rectangular) diagonal ``d`` and a rank-1 LoRA term. ``d = 0`` and ``W_up = 0``
at init. Per slice for fused qkv. Merge: ``W' = W + dW``.

Initialisation beyond the no-op (the paper gives none): ``v_l``, ``v_r`` random directions (any unit
vector gives a valid reflection); ``W_down`` drawn as LoRA's ``A`` (uniform in +-1/sqrt(d_in)), so
that the first updates of ``W_up`` have LoRA's scale, not the ~10x of a standard normal.
"""
import math

import torch
import torch.nn.functional as F
from torch import nn

from .base import AdapterLinear, register_adapter


def householder(x: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """``x H(v)`` for ``x`` (..., S, d) and unit ``v`` (S, d); H is symmetric."""
    return x - 2 * (x * v).sum(-1, keepdim=True) * v


@register_adapter('HTA')
class HTALinear(AdapterLinear):
    default_targets = 'attention'

    def __init__(self, base: nn.Linear, extra_rank: int = 1, num_slices: int = 1, **kwargs):
        super().__init__(base, num_slices=num_slices, **kwargs)
        self.check_rank(extra_rank)
        S, o, i = num_slices, self.slice_out, self.in_features
        self.k = min(o, i)
        kw = self.param_kwargs()
        self.v_left = nn.Parameter(torch.randn(S, o, **kw))
        self.v_right = nn.Parameter(torch.randn(S, i, **kw))
        self.diag = nn.Parameter(torch.zeros(S, self.k, **kw))
        bound = 1 / math.sqrt(i)  # kaiming_uniform_(a=sqrt(5)) of an r x d_in LoRA A
        self.w_down = nn.Parameter(torch.empty(S, o, extra_rank, **kw).uniform_(-bound, bound))
        self.w_up = nn.Parameter(torch.zeros(S, extra_rank, i, **kw))

    def delta(self, x: torch.Tensor) -> torch.Tensor:
        lead = x.shape[:-1]
        x = x.reshape(-1, 1, self.in_features)
        vl, vr = F.normalize(self.v_left, dim=-1), F.normalize(self.v_right, dim=-1)
        z = householder(x, vr)[..., :self.k] * self.diag                      # (N, S, k)
        z = F.pad(z, (0, self.slice_out - self.k))                             # (N, S, d_out/S)
        y = householder(z, vl)
        y = y + torch.einsum('nsr,sor->nso', torch.einsum('nxi,sri->nsr', x, self.w_up), self.w_down)
        return y.reshape(*lead, self.out_features)

    def delta_weight(self) -> torch.Tensor:
        vl, vr = F.normalize(self.v_left, dim=-1), F.normalize(self.v_right, dim=-1)
        eye_o = torch.eye(self.slice_out, device=vl.device, dtype=vl.dtype)
        eye_i = torch.eye(self.in_features, device=vl.device, dtype=vl.dtype)
        h_l = eye_o - 2 * vl[:, :, None] * vl[:, None, :]                       # (S, o, o)
        h_r = eye_i - 2 * vr[:, :, None] * vr[:, None, :]                       # (S, i, i)
        dw = (h_l[:, :, :self.k] * self.diag[:, None, :]) @ h_r[:, :self.k, :] + self.w_down @ self.w_up
        return dw.reshape(self.out_features, self.in_features)
