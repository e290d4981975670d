"""ALoRE (Du et al., arXiv 2412.08341): aggregated low-rank experts in a Kronecker space.

A sequential branch in front of the frozen layer: ``x <- x + s x M^T`` with
``M = sum_i S_i (x) (D_i U_i)`` (``(x)`` the Kronecker product), ``S_i`` (``n x n``) shared by all
adapted layers of the model, ``D_i`` (``d_in/n x r``) and ``U_i`` (``r x d_in/n``) per layer.
``U = 0`` at init, so ``M = 0``. Merge: ``W' = W (I + s M)``.
No public code exists; this follows the paper's description.

Layers that read the same input (EVA02-B/L's ``q_proj``/``k_proj``/``v_proj`` and ``fc1_g``/``fc1_x``)
share one branch (``tie_to``), as the fused ``qkv`` / ``fc1`` of DINOv2 do: two branches per block.

Initialisation (the paper gives none): ``U = 0`` makes the start a no-op; ``D`` Kaiming-uniform as
LoRA's ``A`` so the first updates of ``U`` have LoRA's scale; each ``S_i`` orthogonal so that no
expert starts with a degenerate mixing of the ``n`` blocks.
"""
import math
from typing import Dict, Optional

import torch
from torch import nn

from .base import AdapterLinear, check_alpha, master_dtype, register_adapter


@register_adapter('ALoRE')
class ALoRELinear(AdapterLinear):
    #: one branch per group of layers reading the same input (inject_adapters passes ``tie_to``)
    shares_input_branch = True
    default_targets = 'input'  # the branch sits in front of the layers that read the normalised input

    def __init__(self, base: nn.Linear, r: int = 4, alpha: float = 4, num_experts: int = 4,
                 shared: Dict[str, nn.Parameter] = None, num_slices: int = 1,
                 tie_to: Optional['ALoRELinear'] = None, **kwargs):
        # The branch acts on the input, so q/k/v slices of a fused layer share it (one input).
        super().__init__(base, num_slices=1, **kwargs)
        n, d_in = num_experts, self.in_features
        if d_in % n:
            raise ValueError(f'ALoRE: d_in={d_in} of {self.layer_name!r} is not divisible by num_experts={n}')
        m = d_in // n
        if not 1 <= r <= m:
            raise ValueError(f'ALoRE rank r={r} is invalid for {self.layer_name!r}: 1 <= r <= d_in/n = {m}')
        check_alpha(alpha, f'ALoRE at {self.layer_name!r}')
        self.n, self.m, self.r, self.scale = n, m, r, alpha / r
        if tie_to is not None:
            if (tie_to.in_features, tie_to.n, tie_to.r) != (d_in, n, r):
                raise ValueError(f'ALoRE: {self.layer_name!r} cannot share the branch of {tie_to.layer_name!r}')
            self.expert_D, self.expert_U = tie_to.expert_D, tie_to.expert_U
        else:
            self.expert_D = nn.Parameter(torch.empty(n, m, r, **self.param_kwargs()))
            self.expert_U = nn.Parameter(torch.zeros(n, r, m, **self.param_kwargs()))
            for d in self.expert_D:
                nn.init.kaiming_uniform_(d, a=math.sqrt(5))
        if shared is None:
            shared = self.make_shared(dict(num_experts=n), base.weight)
        self.kron_S = shared['kron_S']

    @staticmethod
    def make_shared(cfg: Dict, like: torch.Tensor) -> Dict[str, nn.Parameter]:
        """The model-wide ``S_i`` (``n x n x n``), created once per ``inject_adapters`` call."""
        n = cfg['num_experts']
        s = torch.empty(n, n, n, device=like.device, dtype=master_dtype(like.dtype))
        for s_i in s:
            nn.init.orthogonal_(s_i)
        return dict(kron_S=nn.Parameter(s))

    def branch(self, x: torch.Tensor) -> torch.Tensor:
        """``s * x M^T`` without building ``M``: block j of x goes through ``D_i U_i``, then ``S_i`` mixes blocks."""
        xb = x.reshape(*x.shape[:-1], self.n, self.m)                      # (..., n_blocks, m)
        low = torch.einsum('...jm,erm->...ejr', xb, self.expert_U)         # (..., expert, block, r)
        up = torch.einsum('...ejr,emr->...ejm', low, self.expert_D)        # (..., expert, block, m)
        out = torch.einsum('eij,...ejm->...im', self.kron_S, up)           # (..., block, m)
        return out.reshape(x.shape) * self.scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.base(x + self.branch(x.to(self.param_dtype)).to(x.dtype))

    def kron_matrix(self) -> torch.Tensor:
        """``M`` (``d_in x d_in``)."""
        return sum(torch.kron(self.kron_S[i], self.expert_D[i] @ self.expert_U[i]) for i in range(self.n))

    def delta_weight(self) -> torch.Tensor:
        return self.scale * self.base.weight.to(self.param_dtype) @ self.kron_matrix()

    def extra_repr(self) -> str:
        return f'{super().extra_repr()}, experts={self.n}, r={self.r}, scale={self.scale:g}'
