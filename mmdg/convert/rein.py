"""Released Rein checkpoints (official Rein code, "rein and head" files) -> a full state dict of mmdg's
Rein segmentor.

Official layout -> mmdg:
  backbone.reins.learnable_tokens_a  (L x m x r)  -> backbone.vit.blocks.<s+i>.learnable_tokens_a  (m x r)
  backbone.reins.learnable_tokens_b  (L x r x C)  -> backbone.vit.blocks.<s+i>.learnable_tokens_b  (r x C)
  backbone.reins.learnable_tokens    (L x m x C)  -> backbone.vit.blocks.<s+i>.learnable_tokens   (full tokens)
  backbone.reins.{scale, mlp_token2feat.*, mlp_delta_f.*, transform.*, merge.*}
                                                  -> backbone.vit.blocks.<s>.reins.*  (s: first Rein block)
  decode_head.*                                   -> decode_head.*  (the same head and names)
The ViT's own weights go under ``backbone.vit.blocks.N.block.*`` (the Rein adapter wraps each block).
"""
from __future__ import annotations

import os.path as osp
import re
from typing import Dict

#: Where the official segmentor keeps the Rein module (``ReinsDinoVisionTransformer.reins``).
OFFICIAL_REINS = 'backbone.reins.'
_SHARED = ('scale', 'mlp_token2feat.', 'mlp_delta_f.', 'transform.', 'merge.')
_STACKED = ('learnable_tokens_a', 'learnable_tokens_b', 'learnable_tokens')


def _block_name(k: str, own: Dict) -> str:
    """A timm ViT key -> the segmentor's key: ``backbone.vit.`` added, and ``blocks.N.`` ->
    ``blocks.N.block.`` where the block is wrapped by a block adapter."""
    name = 'backbone.vit.' + k
    m = re.match(r'^(backbone\.vit\.blocks\.\d+\.)(.*)$', name)
    if name not in own and m and m.group(1) + 'block.' + m.group(2) in own:
        return m.group(1) + 'block.' + m.group(2)
    return name


def rein_to_mmdg(backbone: Dict, rein: Dict, model, rein_source: str = 'the Rein checkpoint',
                 backbone_source: str = 'the backbone checkpoint') -> Dict:
    """The full state dict of ``model`` (a segmentor whose backbone is a :class:`TimmViT` with a Rein
    adapter and whose head is a ``ReinMask2FormerHead``) for a released Rein checkpoint.

    ``backbone``: the frozen ViT's tensors, official or timm layout (resampled with
    ``patch_resample='bicubic'``); ``rein``: the released file's tensors (``backbone.reins.*`` and
    ``decode_head.*``). Raises ``CheckpointError`` listing missing, unexpected and mis-shaped keys.
    """
    from mmdg.adapters import ReinBlock
    from mmdg.convert.vit import check_fit, check_keys, convert_to_timm
    from mmdg.utils.checkpoint import CheckpointError

    vit = model.backbone.vit
    own = model.state_dict()
    rein_blocks = [i for i, b in enumerate(vit.blocks) if isinstance(b, ReinBlock)]
    if not rein_blocks:
        raise CheckpointError('the config\'s backbone has no Rein adapter (model.backbone.adapter.type=\'Rein\')')

    # 1. the frozen ViT, as the official recipe converts it
    pre = convert_to_timm(dict(backbone), vit, patch_resample='bicubic')
    pre.pop('mask_token', None)
    frozen = {_block_name(k, own): v for k, v in pre.items()}
    rein_keys = {k for k in own if k.startswith('backbone.vit.') and
                 (k.rsplit('.', 1)[-1] in _STACKED or '.reins.' in k)}
    check_keys(frozen, {k: v for k, v in own.items() if k.startswith('backbone.vit.') and k not in rein_keys},
               backbone_source, f'the backbone of this config ({type(vit).__name__}, {len(vit.blocks)} blocks, '
                                f'width {vit.embed_dim})')

    # 2. the Rein tensors: per-layer stacks split over the Rein blocks, shared layers into the first one
    state, origin = dict(frozen), {}
    first = f'backbone.vit.blocks.{rein_blocks[0]}.'
    for k, v in rein.items():
        if k.startswith('decode_head.'):
            state[k] = v
            continue
        if not k.startswith(OFFICIAL_REINS):
            continue  # the official file holds nothing else; anything else is not Rein's
        rel = k[len(OFFICIAL_REINS):]
        if rel in _STACKED:
            if v.shape[0] != len(rein_blocks):
                raise CheckpointError(f'{rein_source}: {k} stacks tokens for {v.shape[0]} layers, but this config '
                                      f'adapts {len(rein_blocks)} blocks ({rein_blocks[0]}-{rein_blocks[-1]})')
            for layer, idx in enumerate(rein_blocks):
                name = f'backbone.vit.blocks.{idx}.{rel}'
                state[name], origin[name] = v[layer], f'{k}[{layer}]'
        elif rel.startswith(_SHARED):
            state[first + 'reins.' + rel], origin[first + 'reins.' + rel] = v, k
        else:
            state[k] = v  # reported as unexpected
    if not any(k.startswith(OFFICIAL_REINS) for k in rein):
        raise CheckpointError(f'{rein_source} holds no {OFFICIAL_REINS}* tensor: is it a Rein "rein and head" file?')
    check_fit(state, model, source=f'{rein_source} (over {backbone_source})', origin=origin)
    return {k: state[k] for k in own}


#: Default config: the DINOv2-L GTA5 -> C/B/M recipe (a file-name pattern, so renamed schedules still match).
DEFAULT_CONFIG = 'configs/dg_seg/rein/rein_dinov2-l_mask2former_*gta5-to-cbm-512*.py'


def convert_rein_release(backbone_path: str, rein_path: str, out: str, config: str = None,
                         cfg_options: dict = None) -> str:
    """Files -> an mmdg checkpoint of ``config``'s Rein segmentor; returns a one-line summary."""
    from mmdg.convert.released import build_on_meta, check_paths, config_name, find_config, load_config, save_converted
    from mmdg.convert.soma import select_soma_state
    from mmdg.utils.checkpoint import safe_torch_load, unwrap_state_dict

    check_paths((backbone_path, rein_path), out)
    config = config or find_config(DEFAULT_CONFIG)
    cfg = load_config(config, cfg_options, adapter_type='Rein', release='the released Rein models')
    rein, which = select_soma_state(safe_torch_load(rein_path), None, source=rein_path)
    backbone = unwrap_state_dict(safe_torch_load(backbone_path), backbone_path)
    model = build_on_meta(cfg)
    state = rein_to_mmdg(backbone, rein, model, rein_source=rein_path, backbone_source=backbone_path)
    name = config_name(config)
    n = save_converted(model, state, out, dict(backbone=osp.basename(backbone_path), rein=osp.basename(rein_path),
                                               weights=which, config=name, patch_resample='bicubic'))
    blocks = sum(k.endswith(('.learnable_tokens_a', '.learnable_tokens')) for k in state)
    head = sum(k.startswith('decode_head.') for k in state)
    return f'wrote {out}: {n / 1e6:.1f}M values for {name}; {blocks} Rein blocks, {head} head tensors'
