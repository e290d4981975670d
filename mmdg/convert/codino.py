"""The released SoMA detection checkpoint (official ``PEFTBackboneCoDETR``: DINOv2 + SoRA, Co-DINO) -> a full
state dict of mmdg's :class:`~mmdg.models.detectors.CoDINO`: the backbone as :mod:`mmdg.convert.soma` converts
it, every detector tensor renamed by the key rules below."""
from __future__ import annotations

import re
from typing import Dict, Optional

import torch
from torch import nn

from mmdg.convert.soma import OFFICIAL_BACKBONE, soma_to_mmdg
from mmdg.utils.checkpoint import CheckpointError

#: Official Co-DINO key prefix -> mmdg's :class:`~mmdg.models.detectors.CoDINO` (mmdet 3.x DINO layout).
#: The official query head keeps the transformer in mmcv 1.x style (``attentions`` / ``ffns`` lists inside
#: each layer); its RPN, RoI head and neck are mmdet's own modules, named as in mmdg; its ATSS heads
#: (``bbox_head.N``) are mmdg's ``aux_bbox_head.N``.
_CODINO_RULES = [(re.compile(p), r) for p, r in [
    (r'^query_head\.transformer\.encoder\.layers\.(\d+)\.attentions\.0\.', r'encoder.layers.\1.self_attn.'),
    (r'^query_head\.transformer\.encoder\.layers\.(\d+)\.ffns\.0\.', r'encoder.layers.\1.ffn.'),
    (r'^query_head\.transformer\.encoder\.layers\.(\d+)\.norms\.', r'encoder.layers.\1.norms.'),
    (r'^query_head\.transformer\.decoder\.layers\.(\d+)\.attentions\.0\.', r'decoder.layers.\1.self_attn.'),
    (r'^query_head\.transformer\.decoder\.layers\.(\d+)\.attentions\.1\.', r'decoder.layers.\1.cross_attn.'),
    (r'^query_head\.transformer\.decoder\.layers\.(\d+)\.ffns\.0\.', r'decoder.layers.\1.ffn.'),
    (r'^query_head\.transformer\.decoder\.layers\.(\d+)\.norms\.', r'decoder.layers.\1.norms.'),
    # an nn.Sequential(Linear, ReLU, Linear) there (.0 / .2), mmdet's MLP here (.layers.0 / .layers.1)
    (r'^query_head\.transformer\.decoder\.ref_point_head\.0\.', 'decoder.ref_point_head.layers.0.'),
    (r'^query_head\.transformer\.decoder\.ref_point_head\.2\.', 'decoder.ref_point_head.layers.1.'),
    (r'^query_head\.transformer\.decoder\.norm\.', 'decoder.norm.'),
    (r'^query_head\.transformer\.level_embeds$', 'level_embed'),
    (r'^query_head\.transformer\.enc_output\.', 'memory_trans_fc.'),
    (r'^query_head\.transformer\.enc_output_norm\.', 'memory_trans_norm.'),
    (r'^query_head\.transformer\.query_embed\.', 'query_embedding.'),
    (r'^query_head\.transformer\.aux_pos_trans\.', 'aux_pos_trans.'),
    (r'^query_head\.transformer\.aux_pos_trans_norm\.', 'aux_pos_trans_norm.'),
    (r'^query_head\.dn_generator\.label_embedding\.', 'dn_query_generator.label_embedding.'),
    (r'^query_head\.(cls_branches|reg_branches)\.', r'bbox_head.\1.'),
    (r'^query_head\.downsample\.', 'downsample.'),
    (r'^bbox_head\.', 'aux_bbox_head.'),
    (r'^(neck|rpn_head|roi_head)\.', r'\1.'),
]]


def official_codino_key(key: str) -> Optional[str]:
    """The mmdg CoDINO key of an official Co-DINO (non-backbone) key; ``None`` if it has none."""
    for pattern, repl in _CODINO_RULES:
        if pattern.match(key):
            return pattern.sub(repl, key, count=1)
    return None


def is_codino_checkpoint(state: Dict[str, torch.Tensor]) -> bool:
    """A released detection (Co-DINO) checkpoint rather than a segmentation one."""
    return any(k.startswith('query_head.') for k in state)


def codino_soma_to_mmdg(dinov2: Dict[str, torch.Tensor], soma: Dict[str, torch.Tensor], model: nn.Module,
                        soma_source: str = 'the SoMA detection checkpoint',
                        dinov2_source: str = 'the DINOv2 checkpoint') -> Dict[str, torch.Tensor]:
    """The full state dict of ``model`` (mmdg's CoDINO with a SoRA :class:`TimmViT`) for the released SoMA
    detection checkpoint: the backbone exactly as :func:`soma_to_mmdg` converts it (DINOv2 resampled
    bicubically, overwritten by the file's ``backbone.model.*``), every other tensor renamed by
    :func:`official_codino_key`. A key without an mmdg name, or a model tensor the file does not fill,
    raises :class:`CheckpointError` naming them."""
    renamed: Dict[str, torch.Tensor] = {}
    unknown = []
    for k, v in soma.items():
        if k.startswith(OFFICIAL_BACKBONE):
            renamed[k] = v
            continue
        new = official_codino_key(k)
        if new is None:
            unknown.append(k)
        else:
            renamed[new] = v
    if unknown:
        raise CheckpointError(f'{soma_source}: {len(unknown)} tensor(s) with no place in mmdg\'s Co-DINO: '
                              + ', '.join(sorted(unknown)[:20]) + (' ...' if len(unknown) > 20 else ''))
    return soma_to_mmdg(dinov2, renamed, model, soma_source=soma_source, dinov2_source=dinov2_source)
