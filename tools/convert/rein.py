"""Turn a released Rein checkpoint (official Rein code, "rein and head" file) into an mmdg checkpoint.

    python tools/convert/rein.py checkpoints/dinov2_vitl14_pretrain.pth \
        checkpoints/dinov2_rein_and_head.pth checkpoints/rein_dinov2-l_gta5-to-cbm_mmdg.pth [--config CFG]

BACKBONE_PTH is the frozen ViT the Rein model was trained on: Meta's ``dinov2_vitl14_pretrain.pth`` or
EVA02's ``eva02_L_pt_m38m_p14.pt`` (patch kernel and position grid resized by plain bicubic
interpolation, as the official conversion does), or the official converted file. REIN_PTH holds what
training changed: ``backbone.reins.*`` and the ``decode_head.*`` of ``ReinMask2FormerHead``. The output is
a full state dict of the mmdg Rein segmentor built from ``--config`` (default: the DINOv2-L GTA5 -> C/B/M
config; pass the EVA02-L one for an EVA02 model), for ``tools/test.py`` and ``tools/cross_domain_eval.py``.

Official layout -> mmdg:
  backbone.reins.learnable_tokens_a  (L x m x r)  -> backbone.vit.blocks.<s+i>.learnable_tokens_a  (m x r)
  backbone.reins.learnable_tokens_b  (L x r x C)  -> backbone.vit.blocks.<s+i>.learnable_tokens_b  (r x C)
  backbone.reins.learnable_tokens    (L x m x C)  -> backbone.vit.blocks.<s+i>.learnable_tokens   (full tokens)
  backbone.reins.{scale, mlp_token2feat.*, mlp_delta_f.*, transform.*, merge.*}
                                                  -> backbone.vit.blocks.<s>.reins.*  (s: first Rein block)
  decode_head.*                                   -> decode_head.*  (the same head and names)
The ViT's own weights go under ``backbone.vit.blocks.N.block.*`` (the Rein adapter wraps each block).
A file for another width, depth, token count or rank stops with the keys and shapes that differ.
"""
import argparse
import glob
import os
import os.path as osp
import re
import sys
from typing import Dict

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, REPO)
sys.path.insert(0, osp.dirname(osp.abspath(__file__)))

DEFAULT_CONFIG = 'configs/dg_seg/rein/rein_dinov2-l_mask2former_*gta5-to-cbm-512*.py'
#: Where the official segmentor keeps the Rein module (``ReinsDinoVisionTransformer.reins``).
OFFICIAL_REINS = 'backbone.reins.'
_SHARED = ('scale', 'mlp_token2feat.', 'mlp_delta_f.', 'transform.', 'merge.')
_STACKED = ('learnable_tokens_a', 'learnable_tokens_b', 'learnable_tokens')


def default_config() -> str:
    found = sorted(glob.glob(osp.join(REPO, DEFAULT_CONFIG)))
    if not found:
        raise SystemExit(f'no default config ({DEFAULT_CONFIG}); pass --config')
    return found[0]


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
    from mmdg.models.backbones.vit_weights import check_fit, check_keys, convert_to_timm
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


def main(argv=None):
    from mmengine.config import DictAction
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('backbone', metavar='BACKBONE_PTH', help='the pre-trained DINOv2-L / EVA02-L checkpoint')
    parser.add_argument('rein', metavar='REIN_PTH', help='released Rein "rein and head" checkpoint')
    parser.add_argument('out', metavar='OUT_PTH', help='output mmdg checkpoint')
    parser.add_argument('--config', help='mmdg Rein config the checkpoint is for (default: the DINOv2-L one)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, help='override config values')
    args = parser.parse_args(argv)
    for path in (args.backbone, args.rein):
        if not osp.isfile(path):
            raise SystemExit(f'{path} does not exist')
        if osp.abspath(path) == osp.abspath(args.out):
            raise SystemExit('refusing to overwrite an input checkpoint; choose another output path')
    from mmdg.utils.tool_config import input_errors_as_messages
    with input_errors_as_messages():
        convert(args)


def convert(args):
    import torch
    from mmengine.config import Config
    from soma import build_on_meta

    from mmdg.models.backbones.soma_weights import select_soma_state
    from mmdg.utils.checkpoint import atomic_save, safe_torch_load, unwrap_state_dict

    config = args.config or default_config()
    if not osp.isfile(config):
        raise SystemExit(f'config file {config} does not exist')
    cfg = Config.fromfile(config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    adapter = cfg.model.backbone.get('adapter') or {}
    if str(adapter.get('type', '')).lower() != 'rein':
        raise SystemExit(f'{config} has no Rein adapter (model.backbone.adapter={adapter or None}); '
                         'the released Rein models need a Rein config')
    rein, which = select_soma_state(safe_torch_load(args.rein), None, source=args.rein)
    backbone = unwrap_state_dict(safe_torch_load(args.backbone), args.backbone)
    model = build_on_meta(cfg)
    state = rein_to_mmdg(backbone, rein, model, rein_source=args.rein, backbone_source=args.backbone)
    own = model.state_dict()
    model.load_state_dict({k: v.to(own[k].dtype).contiguous() for k, v in state.items()}, strict=True, assign=True)
    name = osp.relpath(osp.abspath(config), REPO)
    name = config if name.startswith('..') else name
    meta = dict(converted_from=dict(backbone=osp.basename(args.backbone), rein=osp.basename(args.rein),
                                    weights=which, config=name, patch_resample='bicubic'))
    os.makedirs(osp.dirname(osp.abspath(args.out)) or '.', exist_ok=True)
    atomic_save(dict(state_dict=model.state_dict(), meta=meta), args.out)
    blocks = sum(k.endswith(('.learnable_tokens_a', '.learnable_tokens')) for k in state)
    head = sum(k.startswith('decode_head.') for k in state)
    n = sum(v.numel() for v in state.values() if torch.is_tensor(v))
    print(f'wrote {args.out}: {n / 1e6:.1f}M values for {name}; {blocks} Rein blocks, {head} head tensors')


if __name__ == '__main__':
    main()
