"""CLoRA: collaborative low-rank adaptation (base-space sharing + sample-agnostic diversity, SADE).

All adapted matrices of one shape share ``p`` bases ``D_h`` (``d_out x r``) and ``U_h`` (``r x d_in``);
each matrix learns only ``Q_h`` (``r x r``): ``dW = s * sum_h D_h Q_h U_h`` (``Q = 0`` at init).
SADE pushes the ``p`` components ``M_h = D_h Q_h U_h`` of each matrix apart:
``alpha * mean_j sum_{h<h'} |M_h^T M_h'|_F^2 / (|M_h|_F^2 |M_h'|_F^2)``, computed from ``r x r`` Grams.
Defaults (ours, METHODS.md §4): r = 8, p = 4, alpha_sade = 0.1 (the normalised term is in [0, 1]).
"""
import math
from typing import Dict, Optional

import torch
from torch import nn

from .base import AdapterLinear


class CLoRALinear(AdapterLinear):
    defaults = dict(r=8, alpha=8, num_bases=4, sade_weight=0.1)
    aux_loss_name = 'loss_sade'

    def __init__(self, base: nn.Linear, r: int = 8, alpha: float = 8, num_bases: int = 4,
                 sade_weight: float = 0.1, shared: Optional[Dict[str, nn.Parameter]] = None,
                 num_slices: int = 1, **kwargs):
        super().__init__(base, num_slices=num_slices, **kwargs)
        self.check_rank(r)
        self.r, self.p, self.scale, self.sade_weight = r, num_bases, alpha / r, sade_weight
        o, i = self.slice_out, self.in_features
        if shared is None:
            shared = {}
        key = f'{o}x{i}'  # one pair of base spaces per matrix shape
        if f'bases_D_{key}' not in shared:
            shared.update(self.make_bases(o, i, r, num_bases, base.weight))
        self.bases_D, self.bases_U = shared[f'bases_D_{key}'], shared[f'bases_U_{key}']
        self.coef_Q = nn.Parameter(torch.zeros(num_slices, num_bases, r, r, device=base.weight.device,
                                               dtype=base.weight.dtype))

    @staticmethod
    def make_bases(o: int, i: int, r: int, p: int, like: torch.Tensor) -> Dict[str, nn.Parameter]:
        d = torch.empty(p, o, r, device=like.device, dtype=like.dtype)
        u = torch.empty(p, r, i, device=like.device, dtype=like.dtype)
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
        """SADE for this layer's slices (mean over slices), weighted by ``sade_weight``."""
        g_d = torch.einsum('hor,gos->hgrs', self.bases_D, self.bases_D)  # D_h^T D_g  (p, p, r, r)
        g_u = torch.einsum('hri,hsi->hrs', self.bases_U, self.bases_U)   # U_h U_h^T  (p, r, r)
        q = self.coef_Q                                                  # (S, p, r, r)
        h, g = torch.triu_indices(self.p, self.p, offset=1, device=q.device)
        # X = Q_h^T (D_h^T D_g) Q_g ;  |M_h^T M_g|^2 = tr(X^T G_U(h) X G_U(g))
        x = q[:, h].transpose(-1, -2) @ g_d[h, g] @ q[:, g]                # (S, pairs, r, r)
        cross = torch.einsum('spab,pac,spcd,pdb->sp', x, g_u[h], x, g_u[g])
        # |M_h|^2 = tr(Q_h^T G_D(h,h) Q_h G_U(h))
        diag_d = g_d[torch.arange(self.p), torch.arange(self.p)]          # (p, r, r)
        norms = torch.einsum('shab,hac,shcd,hdb->sh', q, diag_d, q, g_u)  # (S, p)
        loss = cross / (norms[:, h] * norms[:, g] + 1e-12)
        return self.sade_weight * loss.sum(-1).mean()
