"""The common contract of every adapter: a small module around one frozen ``nn.Linear``.

An adapter changes the layer's effective weight ``W`` (``d_out x d_in``) and keeps its bias. It offers
four operations: ``forward``, ``merged_weight`` (the plain weight it is equivalent to),
``trainable_parameters`` and ``aux_loss`` (an optional regulariser, ``None`` by default).

Fused projections (timm's ``qkv``, a ``3C x C`` Linear) are handled as ``num_slices`` independent
matrices stacked along the output dimension, because the q, k and v matrices of the reference recipes
are separate layers with their own adapters (METHODS.md §1).
"""
from __future__ import annotations

from typing import Dict, Iterator, Optional

import torch
from torch import nn


class AdapterLinear(nn.Module):
    """Base class. Subclasses implement :meth:`delta` (the adapter's additive output) and
    :meth:`delta_weight`, or override :meth:`forward` / :meth:`merged_weight` for other forms."""

    #: Defaults of the method's config fields (``inject_adapters`` fills missing fields from these).
    defaults: Dict = dict(r=16, alpha=16)
    #: Whether the recipe trains the bias of an adapted layer.
    train_bias: bool = False
    #: Name under which :meth:`aux_loss` reaches the training loss dict (``None``: no auxiliary loss).
    aux_loss_name: Optional[str] = None

    def __init__(self, base: nn.Linear, num_slices: int = 1, train_bias: Optional[bool] = None,
                 name: str = ''):
        super().__init__()
        if not isinstance(base, nn.Linear):
            raise TypeError(f'{type(self).__name__} wraps an nn.Linear, got {type(base).__name__} at {name!r}')
        if base.out_features % num_slices:
            raise ValueError(f'{name!r}: {base.out_features} outputs cannot be split into {num_slices} slices')
        self.base = base
        self.num_slices = num_slices
        self.layer_name = name
        self.bias_trainable = self.train_bias if train_bias is None else bool(train_bias)
        base.weight.requires_grad_(False)
        if base.bias is not None:
            base.bias.requires_grad_(self.bias_trainable)

    # --- shapes -----------------------------------------------------------------------------------
    @property
    def in_features(self) -> int:
        return self.base.in_features

    @property
    def out_features(self) -> int:
        return self.base.out_features

    @property
    def slice_out(self) -> int:
        """Output size of one slice (``d_out`` when the layer is not fused)."""
        return self.base.out_features // self.num_slices

    def check_rank(self, r: int) -> None:
        limit = min(self.slice_out, self.in_features)
        if not 1 <= r <= limit:
            raise ValueError(f'{type(self).__name__} rank r={r} is invalid for {self.layer_name!r}: its '
                             f'{self.slice_out}x{self.in_features} matrices allow 1 <= r <= {limit}')

    def slices(self, weight: torch.Tensor):
        """The ``num_slices`` matrices (views) of a ``d_out x d_in`` weight."""
        return weight.view(self.num_slices, self.slice_out, weight.shape[1])

    # --- the four operations ----------------------------------------------------------------------
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.base(x) + self.delta(x)

    def delta(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def delta_weight(self) -> torch.Tensor:
        """``W' - W`` as a ``d_out x d_in`` matrix."""
        raise NotImplementedError

    @torch.no_grad()
    def merged_weight(self) -> torch.Tensor:
        return self.base.weight + self.delta_weight().to(self.base.weight.dtype)

    def trainable_parameters(self) -> Iterator[nn.Parameter]:
        """Parameters this adapter trains (shared parameters included, once per adapter)."""
        return (p for p in self.parameters() if p.requires_grad)

    def aux_loss(self) -> Optional[torch.Tensor]:
        return None

    @torch.no_grad()
    def merge(self) -> nn.Linear:
        """A plain ``nn.Linear`` computing what this adapter computes."""
        linear = nn.Linear(self.in_features, self.out_features, bias=self.base.bias is not None,
                           device=self.base.weight.device, dtype=self.base.weight.dtype)
        linear.weight.copy_(self.merged_weight())
        if self.base.bias is not None:
            linear.bias.copy_(self.base.bias)
        linear.requires_grad_(False)
        return linear

    def extra_repr(self) -> str:
        return f'in={self.in_features}, out={self.out_features}, slices={self.num_slices}'


def block_diag_slices(b: torch.Tensor) -> torch.Tensor:
    """``(S, m, r)`` -> block-diagonal ``(S*m, S*r)``; the identity for ``S == 1``."""
    return b[0] if b.shape[0] == 1 else torch.block_diag(*b.unbind(0))


class LowRankLinear(AdapterLinear):
    """``W' = W + s * B A`` per slice, with ``A`` (``S, r, d_in``) and ``B`` (``S, d_out/S, r``).

    The shared machinery of LoRA, PiSSA and SoRA, which differ only in how ``A``, ``B`` and the frozen
    residual are initialised.
    """

    def __init__(self, base: nn.Linear, r: int = 16, alpha: float = 16, num_slices: int = 1,
                 train_bias: Optional[bool] = None, name: str = ''):
        super().__init__(base, num_slices=num_slices, train_bias=train_bias, name=name)
        self.check_rank(r)
        self.r = r
        self.scale = alpha / r
        dev, dt = base.weight.device, base.weight.dtype
        self.lora_A = nn.Parameter(torch.zeros(num_slices, r, self.in_features, device=dev, dtype=dt))
        self.lora_B = nn.Parameter(torch.zeros(num_slices, self.slice_out, r, device=dev, dtype=dt))

    def delta(self, x: torch.Tensor) -> torch.Tensor:
        a = self.lora_A.reshape(-1, self.in_features)
        return (x @ a.t()) @ block_diag_slices(self.lora_B).t() * self.scale

    def delta_weight(self) -> torch.Tensor:
        return block_diag_slices(self.lora_B) @ self.lora_A.reshape(-1, self.in_features) * self.scale

    def extra_repr(self) -> str:
        return f'{super().extra_repr()}, r={self.r}, scale={self.scale:g}'
