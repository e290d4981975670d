"""Rein (Wei et al., CVPR 2024, "Stronger, Fewer, & Superior"): learnable tokens that refine the output
of every frozen block, and that also give a Mask2Former decoder its query embeddings.

Per adapted block ``i``: tokens ``T_i`` (``m x C``; low-rank ``T_i = A_i B_i`` with ``A_i`` ``m x r``,
``B_i`` ``r x C``). For the block's patch tokens ``f`` (``n x C``; the class / register tokens pass
through unchanged)::

    S   = softmax(f T_iᵀ / sqrt(C))                 (n x m, over all m tokens)
    Δf̄  = S[:, 1:] · MLP_t(T_i[1:])                 (token 0 only enters the normaliser)
    f'  = f + s · MLP_f(Δf̄ + f)

``MLP_t``, ``MLP_f`` (``C x C`` linear layers) and the scalar ``s`` (init 1e-3) are shared by all
blocks. Token 0 is left out of the value sum as in the released models, which were trained that way:
it acts as a sink that lets a patch attend to "no token".

Query link: ``Q = transform(T)`` for all adapted blocks (``L x m x q``), pooled over the blocks by
max, mean and the last block's value, interleaved per channel (``m x q x 3`` flattened to
``m x 3q``) and merged by a linear layer to ``m x q``: one query embedding per token.
:meth:`ReinShared.query_embeddings` returns it; ``TimmViT(return_queries=True)`` hands it to the head.

Parameters: ``L (m r + r C) + 2 (C² + C) + 1``, plus ``(C q + q) + (3q q + q)`` with the query link;
DINOv2-L (``L = 24``, ``C = 1024``, ``m = 100``, ``r = 16``, ``q = 256``, linked): 2,990,081.

The shared layers live once in the model, in the first adapted block (``blocks.<first>.reins``); the
other blocks refer to them without owning them, so checkpoints hold one copy.
"""
from __future__ import annotations

import math
from typing import Dict, List, Optional

import torch
import torch.nn.functional as F
from torch import nn

from .base import BlockAdapter, master_dtype, register_adapter


def _block_dim(block: nn.Module) -> int:
    # the first linear layer of a ViT block (qkv or q_proj) reads the token width
    for m in block.modules():
        if isinstance(m, nn.Linear):
            return m.in_features
    raise ValueError(f'Rein: cannot tell the token width of {type(block).__name__}: it has no nn.Linear')


class ReinShared(nn.Module):
    """The layers every Rein block shares, built by the first block (which knows the width)."""

    def __init__(self, token_length: int = 100, r: Optional[int] = 16, query_dim: int = 256,
                 link_queries: bool = False, scale_init: float = 1e-3, patch_size: int = 16,
                 prefix_tokens: int = 1):
        super().__init__()
        if not (isinstance(token_length, int) and token_length >= 2):
            raise ValueError(f'Rein: token_length must be an int >= 2 (token 0 is the sink), got {token_length!r}')
        if r is not None and not (isinstance(r, int) and r >= 1):
            raise ValueError(f'Rein: r must be an int >= 1 (low-rank tokens) or None (full tokens), got {r!r}')
        if not (isinstance(prefix_tokens, int) and prefix_tokens >= 0):
            raise ValueError(f'Rein: prefix_tokens must be an int >= 0, got {prefix_tokens!r}')
        self.token_length, self.r, self.query_dim = token_length, r, query_dim
        self.link_queries, self.scale_init = bool(link_queries), float(scale_init)
        self.patch_size, self.prefix_tokens = patch_size, prefix_tokens
        self.dim: Optional[int] = None
        # the Rein blocks, in model order; plain references (they are not children of this module)
        self.__dict__['layers'] = []

    def build(self, dim: int, device, dtype) -> None:
        if self.dim is not None:
            if dim != self.dim:
                raise ValueError(f'Rein: blocks of width {dim} and {self.dim} cannot share one set of tokens')
            return
        kw = dict(device=device, dtype=dtype)
        self.dim = dim
        self.scale = nn.Parameter(torch.tensor(self.scale_init, **kw))
        # nn.Linear's default init is the recipe's (kaiming uniform, a = sqrt(5))
        self.mlp_token2feat = nn.Linear(dim, dim, **kw)
        self.mlp_delta_f = nn.Linear(dim, dim, **kw)
        if self.link_queries:
            self.transform = nn.Linear(dim, self.query_dim, **kw)
            self.merge = nn.Linear(3 * self.query_dim, self.query_dim, **kw)

    def token_init_bound(self) -> float:
        """Half-width of the uniform token init: Xavier-like over a patch's 3 p² inputs and the tokens'
        width (``sqrt(C r)`` for the low-rank factors)."""
        width = self.dim if self.r is None else math.sqrt(self.dim * self.r)
        return math.sqrt(6.0 / (3 * self.patch_size ** 2 + width))

    def query_embeddings(self) -> torch.Tensor:
        """``token_length x query_dim``: the decoder's query embeddings, made from every block's tokens."""
        if not self.link_queries:
            raise RuntimeError('Rein was built with link_queries=False: it makes no query embeddings')
        layers: List['ReinBlock'] = sorted(self.layers, key=lambda b: b.index)
        q = self.transform(torch.stack([b.tokens() for b in layers]))  # L x m x q
        pooled = torch.stack([q.amax(0), q.mean(0), q[-1]], dim=-1)     # m x q x 3
        return self.merge(pooled.flatten(-2))

    def extra_repr(self) -> str:
        return (f'dim={self.dim}, token_length={self.token_length}, r={self.r}, query_dim={self.query_dim}, '
                f'link_queries={self.link_queries}, blocks={len(self.layers)}')


@register_adapter('Rein')
class ReinBlock(BlockAdapter):
    """One frozen block followed by Rein's refinement with this block's tokens (see the module doc).

    Config fields: ``token_length`` (m, 100), ``r`` (rank of the tokens, 16; ``None``: full ``m x C``
    tokens), ``query_dim`` (256, the decoder's width), ``link_queries`` (False; True, the recipe: make
    query embeddings for the head),
    ``scale_init`` (1e-3), ``patch_size`` (16; only sets the token init range), ``prefix_tokens``
    (leading class / register tokens left unrefined: 1 for DINOv2 and EVA02, 5 for the reg4 models).
    """

    # link_queries is off unless asked for: without a head that reads the queries, their layers would be
    # trainable parameters that get no gradient (and trip DDP's unused-parameter check)
    defaults: Dict = dict(token_length=100, r=16, query_dim=256, link_queries=False, scale_init=1e-3,
                          patch_size=16, prefix_tokens=1)

    @staticmethod
    def make_shared(cfg: Dict, like: torch.Tensor) -> ReinShared:
        return ReinShared(**cfg)

    def __init__(self, block: nn.Module, index: int, num_blocks: int, name: str = '',
                 shared: Optional[ReinShared] = None, **method_kwargs):
        cfg = dict(self.defaults, **method_kwargs)
        unknown = set(cfg) - set(self.defaults)
        if unknown:
            raise TypeError(f'Rein got unexpected arguments {sorted(unknown)}')
        super().__init__(block, index, num_blocks, name=name)
        if shared is None:  # a block built on its own
            shared = ReinShared(**cfg)
        like = next(block.parameters())
        kw = dict(device=like.device, dtype=master_dtype(like.dtype))
        dim = _block_dim(block)
        shared.build(dim, **kw)
        if not shared.layers:
            self.reins = shared  # the first block owns the shared layers (one copy in state dicts)
        self.__dict__['shared'] = shared
        shared.layers.append(self)
        m, r = shared.token_length, shared.r
        bound = shared.token_init_bound()
        if r is None:
            self.learnable_tokens = nn.Parameter(torch.empty(m, dim, **kw).uniform_(-bound, bound))
        else:
            self.learnable_tokens_a = nn.Parameter(torch.empty(m, r, **kw).uniform_(-bound, bound))
            self.learnable_tokens_b = nn.Parameter(torch.empty(r, dim, **kw).uniform_(-bound, bound))

    def tokens(self) -> torch.Tensor:
        """This block's ``m x C`` tokens."""
        if self.shared.r is None:
            return self.learnable_tokens
        return self.learnable_tokens_a @ self.learnable_tokens_b

    def refine(self, x: torch.Tensor) -> torch.Tensor:
        s = self.shared
        p = s.prefix_tokens
        feats = x[:, p:]
        t = self.tokens()
        f = feats.to(t.dtype)
        attn = F.softmax(f @ t.t() * s.dim ** -0.5, dim=-1)
        delta = attn[..., 1:] @ s.mlp_token2feat(t[1:])
        delta = s.mlp_delta_f(delta + f) * s.scale
        return torch.cat([x[:, :p], (f + delta).to(x.dtype)], dim=1)

    def trainable_parameters(self):
        own = [p for p in self.parameters() if p.requires_grad]
        ids = {id(p) for p in own}
        return iter(own + [p for p in self.shared.parameters() if p.requires_grad and id(p) not in ids])

    def extra_repr(self) -> str:
        return f'{super().extra_repr()}, owns_shared={"reins" in self._modules}'
