"""Released SoMA checkpoints (the official SoRA code) -> a full state dict of mmdg's SoRA segmentor.

The official "adapter & head" files hold what training changed: ``backbone.model.*`` LoRA factors
(``blocks.N.attn.{q,k,v,proj}`` and ``blocks.N.mlp.fc{1,2}``, each ``lora_A.weight`` ``r x d_in`` and
``lora_B.weight`` ``d_out x r``), the backbone's bias vectors, ``backbone.model.mask_token`` and the whole
``decode_head.*`` (mmseg's ``Mask2FormerHead``, the same module as mmdg's). The frozen weights come from
Meta's DINOv2 checkpoint, converted as the official recipe does: patch kernel and position grid resized by
plain bicubic interpolation (``patch_resample='bicubic'``).

What the released models compute: the official code wraps its separate ``q``/``k``/``v``/... Linears
before the pre-trained weights load, so its SVD decomposes the random initialisation and the pre-trained
weights then overwrite the residual. A trained layer is therefore
``x W_pre^T + b + s (x A^T) B^T`` with ``W_pre`` the converted pre-trained weight and ``s = alpha / r``
(1 in every released config). mmdg's SoRA adapter computes ``base(x) + s' (x A'^T) B'^T`` on timm's fused
``qkv`` with per-slice factors, so the mapping is: ``base.weight = W_pre`` (not ``W_pre - s B A``),
``lora_A`` / ``lora_B`` stacked from q, k, v (``B`` rescaled by ``s / s'``), the ``qkv`` bias
concatenated from the q, k, v biases, ``proj`` / ``fc1`` / ``fc2`` one slice each.

Which weights: mmengine's ``EMAHook`` swaps the two dicts when it saves, so in a checkpoint of an EMA run
``state_dict`` holds the *averaged* weights (what the official evaluation, ``tools/test.py`` with the
config's ``EMAHook``, runs) and ``ema_state_dict`` (keys prefixed ``module.``) the raw training weights;
see :func:`select_soma_state`.
"""
from __future__ import annotations

import math
import re
from typing import Any, Dict, Optional, Tuple

import torch
from torch import nn

from mmdg.convert.vit import check_fit, check_keys, convert_to_timm
from mmdg.utils.checkpoint import CheckpointError

#: Where the official segmentor keeps its ViT (``PEFTBackboneEncoderDecoder.backbone`` is a ``SoraModel``
#: around a ``DinoVisionTransformer`` named ``model``).
OFFICIAL_BACKBONE = 'backbone.model.'
#: ``lora_alpha / r`` of the released models (``r = lora_alpha = 16`` in every official SoRA config).
OFFICIAL_SCALE = 1.0
_QKV = re.compile(r'^(blocks\.\d+\.attn\.)([qkv])\.(weight|bias|lora_A\.weight|lora_B\.weight)$')
_LORA = re.compile(r'^(.*)\.(lora_[AB])\.weight$')


def _strip_module(state: Dict[str, Any]) -> Dict[str, torch.Tensor]:
    return {(k[len('module.'):] if k.startswith('module.') else k): v
            for k, v in state.items() if torch.is_tensor(v)}


def select_soma_state(ckpt: Any, ema: Optional[bool] = None,
                      source: str = 'the SoMA checkpoint') -> Tuple[Dict[str, torch.Tensor], str]:
    """The tensor dict of a SoMA file to convert, and a few words saying which one it is.

    mmengine's ``EMAHook`` saves the averaged weights under ``state_dict`` and the raw training weights
    under ``ema_state_dict`` (it swaps them so that ``state_dict`` can be deployed as it is); the official
    evaluation runs ``state_dict``, i.e. the averaged weights. ``ema``: ``None`` (default) takes the
    averaged weights when the file has an ``ema_state_dict``, else its only weights; ``True`` requires
    averaged weights; ``False`` takes the raw ones (``ema_state_dict``, ``module.`` prefix removed).
    """
    if not isinstance(ckpt, dict):
        raise CheckpointError(f'{source} is not a dict of tensors')
    has_ema = isinstance(ckpt.get('ema_state_dict'), dict)
    main = ckpt['state_dict'] if isinstance(ckpt.get('state_dict'), dict) else None
    if main is None and not has_ema:
        if all(torch.is_tensor(v) for v in ckpt.values()):
            main = ckpt  # a bare state dict
        else:
            raise CheckpointError(f'{source} has neither a "state_dict" nor an "ema_state_dict" of tensors')
    if ema is True and not has_ema:
        raise CheckpointError(f'{source} has no "ema_state_dict", so nothing tells whether its weights are '
                              'averaged: it was not saved by an EMA run. Convert it with --no-ema.')
    if ema is False:
        if has_ema:
            return (_strip_module(ckpt['ema_state_dict']),
                    'raw training weights ("ema_state_dict", where EMAHook moved them)')
        return _strip_module(main), 'its only weights ("state_dict"; the file holds no EMA)'
    if has_ema:
        if main is None:
            raise CheckpointError(f'{source} has an "ema_state_dict" but no "state_dict" (which holds the '
                                  'averaged weights in an EMAHook checkpoint); convert it with --no-ema')
        return _strip_module(main), 'EMA-averaged weights ("state_dict", what the official evaluation runs)'
    return _strip_module(main), 'its only weights ("state_dict"; the file holds no EMA)'


def fuse_official_vit(state: Dict[str, torch.Tensor]) -> Tuple[Dict[str, torch.Tensor], Dict[str, str]]:
    """Official SoRA ViT layout (keys relative to the ViT) -> timm names with a fused ``qkv`` and
    per-slice factor stacks, and for each new key the official key(s) it came from.

    ``attn.{q,k,v}.{weight,bias}`` are concatenated into ``attn.qkv.*``; ``X.lora_A.weight``
    (``r x d_in``) becomes ``X.lora_A`` (``S x r x d_in``) and ``X.lora_B.weight`` (``d_out x r``)
    ``X.lora_B`` (``S x d_out x r``), ``S = 3`` for q, k, v stacked and 1 otherwise. Other keys pass
    unchanged; a q/k/v triple with a missing member is an error."""
    out: Dict[str, torch.Tensor] = {}
    origin: Dict[str, str] = {}
    groups: Dict[Tuple[str, str], Dict[str, torch.Tensor]] = {}
    for k, v in state.items():
        m = _QKV.match(k)
        if m:
            groups.setdefault((m.group(1), m.group(3)), {})[m.group(2)] = v
            continue
        m = _LORA.match(k)
        if m:
            out[f'{m.group(1)}.{m.group(2)}'] = v[None]
            origin[f'{m.group(1)}.{m.group(2)}'] = k
        else:
            out[k] = v
    incomplete = []
    for (prefix, param), parts in sorted(groups.items()):
        official = f'{prefix}{{{",".join(c for c in "qkv" if c in parts)}}}.{param}'
        if set(parts) != {'q', 'k', 'v'}:
            incomplete.append(official)
            continue
        trio = [parts[c] for c in 'qkv']
        name = f'{prefix}qkv.{param[:-len(".weight")] if param.startswith("lora_") else param}'
        out[name] = torch.stack(trio) if param.startswith('lora_') else torch.cat(trio)
        origin[name] = official
    if incomplete:
        raise CheckpointError('separate q, k, v tensors come in threes; incomplete: ' + ', '.join(incomplete))
    return out, origin


def _to_model_names(vit_state: Dict[str, torch.Tensor], own: Dict[str, torch.Tensor],
                    prefix: str) -> Dict[str, str]:
    """timm-relative ViT key -> key of the segmentor's state dict: ``prefix`` added and, where the model
    wraps the Linear in an adapter, ``.weight`` / ``.bias`` moved to ``.base.weight`` / ``.base.bias``."""
    names = {}
    for k in vit_state:
        name = prefix + k
        module, _, param = name.rpartition('.')
        if name not in own and f'{module}.base.{param}' in own:
            name = f'{module}.base.{param}'
        names[k] = name
    return names


def _grid(pos) -> str:
    side = math.isqrt(pos.shape[1] - 1)
    return f'{side}x{side}' if side * side == pos.shape[1] - 1 else f'{pos.shape[1]} positions'


def _is_factor(key: str) -> bool:
    return key.endswith(('.lora_A', '.lora_B'))


def _ranges(indices) -> str:
    """``[8, 9, 10, 12]`` -> ``'8-10, 12'``."""
    parts, run = [], []
    for i in sorted(set(indices)):
        if run and i != run[-1] + 1:
            parts.append(f'{run[0]}-{run[-1]}' if len(run) > 1 else str(run[0]))
            run = []
        run.append(i)
    if run:
        parts.append(f'{run[0]}-{run[-1]}' if len(run) > 1 else str(run[0]))
    return ', '.join(parts) or 'none'


def _describe(tensors: Dict[str, torch.Tensor], width: int) -> str:
    """``width W, SoRA r=R in blocks a-b`` for timm-named ViT tensors (factors as ``*.lora_A``)."""
    factors = {k: v for k, v in tensors.items() if k.endswith('.lora_A')}
    blocks = [int(m.group(1)) for m in (re.search(r'blocks\.(\d+)\.', k) for k in factors) if m]
    ranks = sorted({int(v.shape[-2]) for v in factors.values()})
    return f'width {width}, SoRA r={"/".join(map(str, ranks)) or "?"} in blocks {_ranges(blocks)}'


def soma_to_mmdg(dinov2: Dict[str, torch.Tensor], soma: Dict[str, torch.Tensor], model: nn.Module,
                 soma_source: str = 'the SoMA checkpoint',
                 dinov2_source: str = 'the DINOv2 checkpoint') -> Dict[str, torch.Tensor]:
    """The full state dict of ``model`` (an mmseg segmentor whose ``backbone`` is a :class:`TimmViT` with
    SoRA adapters) for a released SoMA checkpoint.

    ``dinov2``: Meta's ``dinov2_vit*14_pretrain.pth`` tensors (patch 14; resampled here with
    ``patch_resample='bicubic'``), or the official converted file (separate q/k/v, already at the model's
    kernel size and grid). ``soma``: the tensors chosen by :func:`select_soma_state`; its
    ``backbone.model.*`` tensors replace the pre-trained ones (as the official merge does) and its
    ``decode_head.*`` fill the head. Anything that does not fit -- another architecture, another crop
    size's position grid, another rank, adapters in other blocks, a missing head -- raises
    :class:`CheckpointError` listing the keys and shapes.
    """
    vit = model.backbone.vit
    own = model.state_dict()
    prefix = 'backbone.vit.'

    # 1. the frozen weights: the pre-trained ViT as the official recipe converts it
    pre, _ = fuse_official_vit(dict(dinov2))
    kernel, pos = pre.get('patch_embed.proj.weight'), pre.get('pos_embed')
    model_kernel = tuple(vit.patch_embed.proj.weight.shape[-2:])
    if kernel is not None and pos is not None and tuple(kernel.shape[-2:]) == model_kernel \
            and pos.shape[1] != vit.pos_embed.shape[1]:
        # already converted for another crop size: resampling it again would not give the official tokens
        raise CheckpointError(
            f'{dinov2_source} is already converted (patch kernel {model_kernel[0]}x{model_kernel[1]}) for another '
            f'crop size:\n  mis-shaped (1): pos_embed: checkpoint {tuple(pos.shape)} ({_grid(pos)} grid) vs model '
            f'{tuple(vit.pos_embed.shape)} ({_grid(vit.pos_embed)} grid)\n  Pass Meta\'s original checkpoint '
            '(patch 14) or the conversion for the config\'s crop size.')
    pre = convert_to_timm(pre, vit, patch_resample='bicubic')
    pre.pop('mask_token', None)
    names = _to_model_names(pre, own, prefix)
    frozen = {names[k]: v for k, v in pre.items()}
    vit_keys = {k: v for k, v in own.items() if k.startswith(prefix) and not _is_factor(k)}
    check_keys(frozen, vit_keys, dinov2_source,
               f'the backbone of this config ({type(vit).__name__}, {len(vit.blocks)} blocks, '
               f'width {vit.embed_dim}, position grid {_grid(vit.pos_embed)})')

    # 2. what training changed, from the SoMA file (replacing the pre-trained tensors it also holds)
    official = {k[len(OFFICIAL_BACKBONE):]: v for k, v in soma.items() if k.startswith(OFFICIAL_BACKBONE)}
    official.pop('mask_token', None)  # pre-training only: the official forward never reads it
    trained, fused_from = fuse_official_vit(official)
    names = _to_model_names(trained, own, prefix)
    origin = {names[k]: OFFICIAL_BACKBONE + fused_from.get(k, k) for k in trained}
    state = dict(frozen)
    for k, v in trained.items():
        name = names[k]
        if name.endswith('.lora_B') and name in own:
            scale = model.get_submodule(name[:-len('.lora_B')]).scale
            v = v * (OFFICIAL_SCALE / scale) if scale != OFFICIAL_SCALE else v
        state[name] = v
    state.update((k, v) for k, v in soma.items() if not k.startswith(OFFICIAL_BACKBONE))  # decode_head.*

    factors = [k for k in own if _is_factor(k)]
    if factors and not any(_is_factor(k) for k in state):
        raise CheckpointError(f'{soma_source} holds no adapter factor ({OFFICIAL_BACKBONE}blocks.N.*.lora_A.weight) '
                              f'for the {len(factors) // 2} SoRA layers of this config: is it a SoMA checkpoint?')
    try:
        check_fit(state, model, source=f'{soma_source} (over {dinov2_source})', origin=origin)
    except CheckpointError as err:
        norm = trained.get('norm.bias', next((v for k, v in trained.items() if k.endswith('.bias')), None))
        found = _describe(trained, norm.shape[0] if norm is not None else '?')
        wanted = _describe({k[len(prefix):]: v for k, v in own.items() if k.startswith(prefix)}, vit.embed_dim)
        hint = f'\n  the checkpoint: {found}; this config: {wanted}' if found != wanted else ''
        raise CheckpointError(f'{err}{hint}') from None
    return {k: state[k] for k in own}


#: Default config per crop size and of the detection release (file-name patterns, so that renamed schedules
#: still match).
DEFAULT_CONFIGS = {
    512: 'configs/dg_seg/sora/sora_dinov2-l_mask2former_*gta5-to-cbm-512*.py',
    1024: 'configs/dg_seg/sora/sora_dinov2-l_mask2former_*cityscapes-to-acdc-1024*.py',
}
DEFAULT_DET_CONFIG = 'configs/dg_det/sora/sora_dinov2-l_codino_*dwd-1024*.py'


def config_crop(cfg) -> int:
    size = cfg.model.backbone.get('img_size', 512)
    h, w = (size, size) if isinstance(size, int) else tuple(size)
    if h != w:
        raise SystemExit(f'the config builds a {h}x{w} backbone; the released SoMA models use square crops')
    return h


def convert_soma_release(dinov2_path: str, soma_path: str, out: str, config: Optional[str] = None,
                         crop: Optional[int] = None, ema: Optional[bool] = None,
                         cfg_options: Optional[dict] = None) -> str:
    """Files -> an mmdg checkpoint of ``config``'s SoRA segmentor (or Co-DINO detector, for the detection
    release); returns a one-line summary."""
    import os.path as osp

    from mmdg.convert.codino import codino_soma_to_mmdg, is_codino_checkpoint
    from mmdg.convert.released import build_on_meta, check_paths, config_name, find_config, load_config, save_converted
    from mmdg.utils.checkpoint import safe_torch_load, unwrap_state_dict

    check_paths((dinov2_path, soma_path), out)
    soma, which = select_soma_state(safe_torch_load(soma_path), ema, source=soma_path)
    det = is_codino_checkpoint(soma)  # the DGOD release: DINOv2-L SoRA + Co-DINO
    if config is None:
        config = (find_config(DEFAULT_DET_CONFIG, 'for the detection release') if det else
                  find_config(DEFAULT_CONFIGS[crop or 512], f'for --crop {crop or 512}'))
    cfg = load_config(config, cfg_options, adapter_type='SoRA', release='the released SoMA models')
    size = config_crop(cfg)
    if crop is not None and crop != size:
        raise SystemExit(f'--crop {crop}, but {config} builds a model for {size}x{size} crops '
                         f'(model.backbone.img_size={size}): pass the config of the {crop} recipe with --config')
    if det != (cfg.model.type == 'CoDINO'):
        raise SystemExit(f'{soma_path} is a {"detection (Co-DINO)" if det else "segmentation"} checkpoint, but '
                         f'{config} builds a {cfg.model.type}: pass a '
                         f'{"configs/dg_det/*codino*" if det else "configs/dg_seg/sora/*"} config with --config')
    dinov2 = safe_torch_load(dinov2_path)
    made = dinov2.get('meta', {}) if isinstance(dinov2, dict) else {}
    if isinstance(made, dict) and 'patch_size' in made and made.get('patch_resample', 'pinv') != 'bicubic':
        # a tools/convert/vit.py output (files made before --patch-resample existed used 'pinv')
        raise SystemExit(f'{dinov2_path} was converted with --patch-resample {made.get("patch_resample", "pinv")}; '
                         'the released SoMA models need the official bicubic resampling: pass Meta\'s original '
                         'checkpoint (or a tools/convert/vit.py output made with --patch-resample bicubic)')
    dinov2 = unwrap_state_dict(dinov2, dinov2_path)
    model = build_on_meta(cfg)
    state = (codino_soma_to_mmdg if det else soma_to_mmdg)(dinov2, soma, model, soma_source=soma_path,
                                                            dinov2_source=dinov2_path)
    name = config_name(config)
    n = save_converted(model, state, out, dict(dinov2=osp.basename(dinov2_path), soma=osp.basename(soma_path),
                                               weights=which, config=name, crop=size, patch_resample='bicubic'))
    adapted = sum(k.endswith('.lora_A') for k in state)
    head = sum(not k.startswith('backbone.') for k in state) if det else sum(k.startswith('decode_head.') for k in state)
    return (f'wrote {out}: {n / 1e6:.1f}M values for {name} ({size}x{size} crops); {which}; '
            f'{adapted} SoRA layers, {head} head tensors')
