"""CLoRA: collaborative low-rank adaptation (base-space sharing + sample-agnostic diversity, SADE).

All adapted matrices of one shape share ``p`` bases ``D_h`` (``d_out x r``) and ``U_h`` (``r x d_in``);
each matrix learns only ``Q_h`` (``r x r``): ``dW = s * sum_h D_h Q_h U_h`` (``Q = 0`` at init).
SADE pushes the ``p`` components ``M_h = D_h Q_h U_h`` of each matrix apart:
``alpha * sum_j sum_{h<h'} |M_h^T M_h'|_F^2 / ((|M_h|_F^2 + e_h) (|M_h'|_F^2 + e_h'))``, computed from
``r x r`` Grams, summed over every adapted matrix (a fused qkv's three slices count as three matrices,
as EVA02-B/L's separate q/k/v layers do).

``e_h = sade_eps * |D_h|_F^2 |U_h|_F^2 / r^2`` is what ``|M_h|_F^2`` is for a ``Q_h`` of Frobenius norm
about ``sqrt(sade_eps)``: below that scale the term fades out (``~|Q|^4``) instead of its gradient
growing like ``1/|Q|`` near the zero init; above it the term is the scale-free normalised overlap.
SADE is computed in float32 with autocast off: in float16 ``|M_h|^2`` underflows and the loss is NaN.

Defaults (ours): r = 8, p = 4, sade_weight = 0.1 (the normalised term is in [0, 1] per pair),
sade_eps = 1e-3 (the term is fully on once ``|Q_h|_F`` reaches ~0.03, within the first hundred steps
at the recipe's learning rate). Initialisation (the paper gives none): ``Q = 0`` for the no-op; the
bases Kaiming-uniform as LoRA's ``A``, so each base pair starts as a random rank-r subspace.
"""
import math
from typing import Dict, Optional

import torch
from torch import nn

from .base import AdapterLinear, check_alpha, master_dtype, register_adapter


@register_adapter('CLoRA')
class CLoRALinear(AdapterLinear):
    aux_loss_name = 'loss_sade'

    def __init__(self, base: nn.Linear, r: int = 8, alpha: float = 8, num_bases: int = 4,
                 sade_weight: float = 0.1, sade_eps: float = 1e-3,
                 shared: Optional[Dict[str, nn.Parameter]] = None, num_slices: int = 1, **kwargs):
        super().__init__(base, num_slices=num_slices, **kwargs)
        self.check_rank(r)
        check_alpha(alpha, f'CLoRA at {self.layer_name!r}')
        if not sade_eps > 0:
            raise ValueError(f'CLoRA: sade_eps must be > 0, got {sade_eps!r}')
        if num_bases < 2:
            raise ValueError(f'CLoRA: num_bases must be >= 2 (SADE compares pairs of bases), got {num_bases!r}')
        self.r, self.p, self.scale, self.sade_weight = r, num_bases, alpha / r, sade_weight
        self.sade_eps = sade_eps
        o, i = self.slice_out, self.in_features
        if shared is None:
            shared = {}
        key = f'{o}x{i}'  # one pair of base spaces per matrix shape
        if f'bases_D_{key}' not in shared:
            shared.update(self.make_bases(o, i, r, num_bases, base.weight))
        self.bases_D, self.bases_U = shared[f'bases_D_{key}'], shared[f'bases_U_{key}']
        self.coef_Q = nn.Parameter(torch.zeros(num_slices, num_bases, r, r, **self.param_kwargs()))

    @staticmethod
    def make_bases(o: int, i: int, r: int, p: int, like: torch.Tensor) -> Dict[str, nn.Parameter]:
        d = torch.empty(p, o, r, device=like.device, dtype=master_dtype(like.dtype))
        u = torch.empty(p, r, i, device=like.device, dtype=master_dtype(like.dtype))
        for t in (*d, *u):
            nn.init.kaiming_uniform_(t, a=math.sqrt(5))
        return {f'bases_D_{o}x{i}': nn.Parameter(d), f'bases_U_{o}x{i}': nn.Parameter(u)}

    @staticmethod
    def make_shared(cfg: Dict, like: torch.Tensor) -> Dict[str, nn.Parameter]:
        return {}  # filled lazily per matrix shape by the layers themselves

    def delta(self, x: torch.Tensor) -> torch.Tensor:
        t = torch.einsum('...i,hri->...hr', x, self.bases_U)                  # (..., p, r)
        t = torch.einsum('...hr,shqr->...shq', t, self.coef_Q)                # (..., S, p, r)
        y = torch.einsum('...shq,hoq->...so', t, self.bases_D)                # (..., S, o)
        return y.reshape(*x.shape[:-1], self.out_features) * self.scale

    def delta_weight(self) -> torch.Tensor:
        dw = torch.einsum('hoq,shqr,hri->soi', self.bases_D, self.coef_Q, self.bases_U)
        return dw.reshape(self.out_features, self.in_features) * self.scale

    def aux_loss(self) -> torch.Tensor:
        """SADE summed over this layer's slices, weighted by ``sade_weight``; float32, autocast off."""
        dev = self.coef_Q.device
        with torch.autocast(device_type=dev.type if dev.type != 'meta' else 'cpu', enabled=False):
            return self._sade(self.bases_D.float(), self.bases_U.float(), self.coef_Q.float())

    def _sade(self, bases_d: torch.Tensor, bases_u: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
        g_d = torch.einsum('hor,gos->hgrs', bases_d, bases_d)             # D_h^T D_g  (p, p, r, r)
        g_u = torch.einsum('hri,hsi->hrs', bases_u, bases_u)              # U_h U_h^T  (p, r, r)
        h, g = torch.triu_indices(self.p, self.p, offset=1, device=q.device)
        # X = Q_h^T (D_h^T D_g) Q_g ;  |M_h^T M_g|^2 = tr(X^T G_U(h) X G_U(g))
        x = q[:, h].transpose(-1, -2) @ g_d[h, g] @ q[:, g]                # (S, pairs, r, r)
        cross = torch.einsum('spab,pac,spcd,pdb->sp', x, g_u[h], x, g_u[g])
        # |M_h|^2 = tr(Q_h^T G_D(h,h) Q_h G_U(h))
        diag_d = g_d[torch.arange(self.p), torch.arange(self.p)]          # (p, r, r)
        norms = torch.einsum('shab,hac,shcd,hdb->sh', q, diag_d, q, g_u)  # (S, p)
        # the floor: |M_h|^2 of a Q_h with |Q_h|_F^2 = sade_eps (|D|^2 |U|^2 / r^2 for random bases)
        floor = self.sade_eps * bases_d.pow(2).sum((1, 2)) * bases_u.pow(2).sum((1, 2)) / self.r ** 2  # (p,)
        n = norms + floor
        return self.sade_weight * (cross / (n[:, h] * n[:, g])).sum()
