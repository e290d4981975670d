"""mmseg's Mask2Former head whose query embeddings come from the backbone (Rein's query link)."""
from types import SimpleNamespace
from typing import List, Sequence, Tuple

import torch
from mmseg.models.decode_heads.mask2former_head import Mask2FormerHead
from torch import Tensor, nn

from mmdg.registry import MODELS


@MODELS.register_module()
class ReinMask2FormerHead(Mask2FormerHead):
    """``Mask2FormerHead`` fed ``(features, queries)`` by ``TimmViT(return_queries=True)``.

    ``queries`` (``num_queries x feat_channels``, input-independent, made from Rein's tokens) replace the
    learned positional query embeddings (``query_embed``, removed). With ``replace_query_feat`` (the
    recipe's setting) the initial query features are ``querys2feat(queries)`` as well, and the learned
    ``query_feat`` is removed; otherwise ``query_feat`` stays. Everything else is mmseg's head; the
    parameter names match the released Rein heads, which load as they are.
    """

    def __init__(self, replace_query_feat: bool = True, **kwargs):
        super().__init__(**kwargs)
        self.replace_query_feat = replace_query_feat
        del self._modules['query_embed']
        if replace_query_feat:
            del self._modules['query_feat']
            feat = kwargs['feat_channels']
            self.querys2feat = nn.Linear(feat, feat)
        self._queries = None

    # mmdet's forward reads ``query_embed.weight`` / ``query_feat.weight`` (one row per query, repeated over
    # the batch); during a forward these answer with the backbone's queries, so that forward runs unchanged.
    @property
    def query_embed(self):
        if self._queries is None:
            raise RuntimeError('ReinMask2FormerHead: the query embeddings come with the features, as '
                               '(features, queries); build the backbone with return_queries=True')
        return SimpleNamespace(weight=self._queries)

    @property
    def query_feat(self):
        if not self.replace_query_feat:
            return self._modules['query_feat']
        return SimpleNamespace(weight=self.querys2feat(self.query_embed.weight))

    def forward(self, x: Tuple[Sequence[Tensor], Tensor], batch_data_samples) -> Tuple[List[Tensor]]:
        if not (isinstance(x, (tuple, list)) and len(x) == 2 and torch.is_tensor(x[1])):
            raise TypeError('ReinMask2FormerHead takes (features, queries) from the backbone; build it with '
                            'TimmViT(return_queries=True) and a Rein adapter with link_queries=True')
        feats, queries = x
        if queries.dim() != 2 or queries.shape[0] != self.num_queries:
            raise ValueError(f'ReinMask2FormerHead: queries of shape {tuple(queries.shape)}, expected '
                             f'{self.num_queries} rows (num_queries must equal Rein\'s token_length)')
        self._queries = queries
        try:
            return super().forward(list(feats), batch_data_samples)
        finally:
            self._queries = None
