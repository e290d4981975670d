"""SoRA (Yun et al., arXiv 2412.04077 / CVPR 2025 "SoMA"): adapt the r *smallest* singular components.

Per slice, in float32: ``W = U diag(S) V^T``; with the r minor triplets and ``s = alpha / r``:
``A = diag(sqrt(S_r / s)) V_r^T``, ``B = U_r diag(sqrt(S_r / s))``, frozen residual ``W_res = W - s B A``.
The SVD runs when the adapter is built, so the backbone must hold its pre-trained weights by then
(mmdg's backbones load them before injecting). The residual lives in ``base.weight`` and is saved
with the model, so loading a trained checkpoint restores it without any new SVD.

``svd_source='random'`` reproduces the official code instead, which wraps the layers before the
pre-trained weights load: its SVD decomposes the layer's random initialisation (PyTorch's default
``nn.Linear`` init), and the pre-trained weights then overwrite the residual, so the effective weight at
the start is ``W_pre + s B A`` (not ``W_pre``) with ``A``, ``B`` the minor components of a random matrix.
"""
import math

import torch
from torch import nn

from .base import LowRankLinear, block_diag_slices, register_adapter

SVD_SOURCES = ('pretrained', 'random')


@register_adapter('SoRA')
class SoRALinear(LowRankLinear):
    train_bias = True  # the SoRA recipe trains the biases of the adapted layers
    #: the initialisation reads the wrapped weights (meaningless on the meta device)
    needs_weights = True
    #: which end of the spectrum is adapted: 'minor' (SoRA) or 'principal' (PiSSA)
    components = 'minor'

    def __init__(self, base: nn.Linear, r: int = 16, alpha: float = 16, svd_source: str = 'pretrained',
                 **kwargs):
        if svd_source not in SVD_SOURCES:
            raise ValueError(f'svd_source must be one of {SVD_SOURCES}, got {svd_source!r}')
        super().__init__(base, r=r, alpha=alpha, **kwargs)
        self.svd_source = svd_source
        self.init_from_svd()

    @torch.no_grad()
    def init_from_svd(self) -> None:
        if self.svd_source == 'random':
            # one freshly initialised matrix per slice, as the official separate q/k/v nn.Linear layers
            w = torch.empty(self.num_slices, self.slice_out, self.in_features, device=self.base.weight.device)
            for w_i in w:
                nn.init.kaiming_uniform_(w_i, a=math.sqrt(5))
        else:
            w = self.slices(self.base.weight)
        for i, w_i in enumerate(w):
            u, s, vh = torch.linalg.svd(w_i.float(), full_matrices=False)  # s descending
            keep = slice(-self.r, None) if self.components == 'minor' else slice(0, self.r)
            root = (s[keep] / self.scale).sqrt()
            self.lora_A[i] = (root[:, None] * vh[keep]).to(self.lora_A.dtype)
            self.lora_B[i] = (u[:, keep] * root[None]).to(self.lora_B.dtype)
        if self.svd_source == 'random':
            return  # the residual stays the pre-trained weight
        # Subtract in float32 from the float32 product so that W_res + s B A reproduces W to rounding.
        product = block_diag_slices(self.lora_B.float()) @ self.lora_A.float().reshape(-1, self.in_features)
        self.base.weight.copy_(self.base.weight.float() - self.scale * product)

    def extra_repr(self) -> str:
        return super().extra_repr() + (f', svd_source={self.svd_source}' if self.svd_source != 'pretrained' else '')
