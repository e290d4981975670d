"""Building the timm ViTs mmdg uses and loading official DINOv2 / EVA02 weights into them.

Key conversion is timm's own ``checkpoint_filter_fn`` (it knows the official DINOv2 and EVA02 layouts).
The patch kernel (14 -> 16) and the position grid are resampled in one of two ways
(:data:`PATCH_RESAMPLE`): ``'pinv'``, timm's pseudo-inverse kernel resampling (patch embeddings of
resized patches preserved) with antialiased bicubic positions, or ``'bicubic'``, plain bicubic
``F.interpolate`` of kernel and position grid as the official SoRA/SoMA conversion does, whose released
models were trained on the tokens it gives. This module adds architecture names, checks that report
every missing, unexpected and mis-shaped key, and the inverse mapping to the official DINOv2 layout
(for exporting merged backbones and for tests).
"""
from __future__ import annotations

import math
import re
from typing import Dict, Optional, Tuple, Union

import timm
import torch
import torch.nn.functional as F
from torch import nn

from mmdg.utils.checkpoint import CheckpointError, safe_torch_load, unwrap_state_dict  # noqa: F401 (re-exported)

#: mmdg architecture names -> timm model names. Any timm model name is accepted as well.
ARCHS = {
    'dinov2-s': 'vit_small_patch14_dinov2',
    'dinov2-b': 'vit_base_patch14_dinov2',
    'dinov2-l': 'vit_large_patch14_dinov2',
    'dinov2-g': 'vit_giant_patch14_dinov2',
    'dinov2-s-reg4': 'vit_small_patch14_reg4_dinov2',
    'dinov2-b-reg4': 'vit_base_patch14_reg4_dinov2',
    'dinov2-l-reg4': 'vit_large_patch14_reg4_dinov2',
    'dinov2-g-reg4': 'vit_giant_patch14_reg4_dinov2',
    'eva02-s': 'eva02_small_patch14_224',
    'eva02-b': 'eva02_base_patch14_224',
    'eva02-l': 'eva02_large_patch14_224',
    # DINOv3 (timm's Eva: patch 16, RoPE, 4 register tokens, layer scale; the 7B with SwiGLU); `-qkvb`: the
    # variants with a qkv bias
    **{f'dinov3-{size}{qkvb}': f'vit_{name}_patch16_dinov3{qkvb.replace("-", "_")}'
       for size, name in (('s', 'small'), ('s+', 'small_plus'), ('b', 'base'), ('l', 'large'), ('h+', 'huge_plus'))
       for qkvb in ('', '-qkvb')},
    'dinov3-7b': 'vit_7b_patch16_dinov3',
}

#: Ways to resample a pre-trained patch kernel and position grid to the model's (see the module doc).
PATCH_RESAMPLE = ('pinv', 'bicubic')

#: Keys of pre-training heads that a backbone legitimately has no place for.
_PRETRAIN_ONLY = re.compile(r'^(mask_token|lm_head\.|head\.|fc_norm\.|rope\.)')


def timm_name(arch: str) -> str:
    if arch in ARCHS:
        return ARCHS[arch]
    if arch in timm.list_models() or timm.is_model(arch):
        return arch
    raise KeyError(f'unknown ViT arch {arch!r}: use one of {", ".join(ARCHS)} or a timm model name')


def build_timm_vit(arch: str, img_size: Union[int, Tuple[int, int]] = 518, patch_size: int = 14,
                   **kwargs) -> nn.Module:
    """A randomly initialised timm ViT without classifier, accepting any input size at run time."""
    kwargs = dict(dict(num_classes=0, dynamic_img_size=True), **kwargs)
    return timm.create_model(timm_name(arch), pretrained=False, img_size=img_size, patch_size=patch_size, **kwargs)


def _filter_fn(model: nn.Module):
    module = type(model).__module__
    if module.endswith('.eva'):
        from timm.models.eva import checkpoint_filter_fn
    else:
        from timm.models.vision_transformer import checkpoint_filter_fn
    return checkpoint_filter_fn


def check_patch_resample(patch_resample: str) -> str:
    if patch_resample not in PATCH_RESAMPLE:
        raise ValueError(f'patch_resample={patch_resample!r}: use one of {", ".join(PATCH_RESAMPLE)}')
    return patch_resample


def _position_prefix(num_tokens: int, model: nn.Module) -> int:
    """How many leading (class / register) positions a checkpoint's ``pos_embed`` of ``num_tokens``
    entries holds before its square grid: 0 or the model's prefix-token count (1 for DINOv2 / EVA02)."""
    for prefix in sorted({0, 1, int(getattr(model, 'num_prefix_tokens', 1))}):
        side = math.isqrt(max(num_tokens - prefix, 0))
        if side > 0 and side * side == num_tokens - prefix:
            return prefix
    raise CheckpointError(f'pos_embed with {num_tokens} positions is no square grid (after 0 or 1 class '
                          f'position); patch_resample="bicubic" cannot resample it')


def resample_bicubic(state_dict: Dict[str, torch.Tensor], model: nn.Module) -> Dict[str, torch.Tensor]:
    """The official SoRA/SoMA conversion of ``patch_embed.proj.weight`` and ``pos_embed`` to ``model``'s
    kernel size and position grid: ``F.interpolate(..., mode='bicubic', align_corners=False)`` without
    antialiasing, in float32; leading class positions are kept as they are. Other keys pass unchanged,
    as do tensors that already have the model's size."""
    out = dict(state_dict)
    kernel = out.get('patch_embed.proj.weight')
    size = tuple(model.patch_embed.proj.weight.shape[-2:])
    if kernel is not None and kernel.ndim == 4 and tuple(kernel.shape[-2:]) != size:
        out['patch_embed.proj.weight'] = F.interpolate(kernel.float(), size=size, mode='bicubic',
                                                       align_corners=False)
    pos = out.get('pos_embed')
    grid = tuple(model.patch_embed.grid_size)
    own_pos = getattr(model, 'pos_embed', None)
    # a grid of the model's size (square or not) is already what the model needs
    if pos is not None and own_pos is not None and tuple(pos.shape) != tuple(own_pos.shape):
        prefix = _position_prefix(pos.shape[1], model)
        side = math.isqrt(pos.shape[1] - prefix)
        if (side, side) != grid:
            cls_pos, tokens = pos[:, :prefix], pos[:, prefix:].float()
            tokens = tokens.reshape(pos.shape[0], side, side, -1).permute(0, 3, 1, 2)
            tokens = F.interpolate(tokens, size=grid, mode='bicubic', align_corners=False)
            tokens = tokens.permute(0, 2, 3, 1).reshape(pos.shape[0], grid[0] * grid[1], -1)
            out['pos_embed'] = torch.cat([cls_pos.float(), tokens], dim=1)
    return out


#: How a ViT's position grid is resampled at run time for inputs of another size (see :func:`use_pos_resample`).
POS_RESAMPLE = ('timm', 'dinov2')


def resample_pos_dinov2(pos_embed: torch.Tensor, new_grid: Tuple[int, int], old_grid: Tuple[int, int],
                        num_prefix: int) -> torch.Tensor:
    """DINOv2's own ``interpolate_pos_encoding`` (Meta's code, and the official SoRA/SoMA and Rein backbones):
    bicubic ``F.interpolate`` by ``scale_factor=(n + 0.1) / N`` per side, not by size, without antialiasing,
    in float32; the ``num_prefix`` leading (class) positions unchanged, the grid kept where it already fits.
    timm's dynamic sizing (by size, antialiased) gives other embeddings at every other size: 0.44 max-abs
    at 512x512 from DINOv2-L's 37x37 grid."""
    new_grid, old_grid = tuple(int(s) for s in new_grid), tuple(int(s) for s in old_grid)
    if new_grid == old_grid:
        return pos_embed
    dtype, dim = pos_embed.dtype, pos_embed.shape[-1]
    prefix, grid = pos_embed[:, :num_prefix], pos_embed[:, num_prefix:].float()
    grid = grid.reshape(1, *old_grid, dim).permute(0, 3, 1, 2)
    grid = F.interpolate(grid, scale_factor=((new_grid[0] + 0.1) / old_grid[0], (new_grid[1] + 0.1) / old_grid[1]),
                         mode='bicubic')
    if tuple(grid.shape[-2:]) != new_grid:  # the +0.1 keeps floor(N * (n + 0.1) / N) == n
        raise RuntimeError(f'position grid {old_grid} resampled to {tuple(grid.shape[-2:])}, not {new_grid}')
    grid = grid.permute(0, 2, 3, 1).reshape(1, new_grid[0] * new_grid[1], dim)
    return torch.cat([prefix.float(), grid], dim=1).to(dtype)


def _pos_embed_dinov2(self, x: torch.Tensor) -> torch.Tensor:
    """timm's ``VisionTransformer._pos_embed`` (dynamic image size) with :func:`resample_pos_dinov2`."""
    B, H, W, C = x.shape
    num_prefix = 0 if self.no_embed_class else self.num_prefix_tokens
    pos_embed = resample_pos_dinov2(self.pos_embed, (H, W), self.patch_embed.grid_size, num_prefix)
    x = x.view(B, -1, C)
    to_cat = [t.expand(B, -1, -1) for t in (self.cls_token, self.reg_token) if t is not None]
    if self.no_embed_class:
        x = torch.cat(to_cat + [x + pos_embed], dim=1)
    else:
        x = torch.cat(to_cat + [x], dim=1) + pos_embed
    return self.pos_drop(x)


def use_pos_resample(model: nn.Module, pos_resample: str) -> nn.Module:
    """Choose how ``model`` (a timm ViT built with dynamic image size) resamples its position grid for inputs
    of another size: ``'timm'`` (timm's own, by size, antialiased) or ``'dinov2'`` (DINOv2's own rule, what
    the official SoRA/SoMA and Rein backbones compute: whole-image tests, detection scales, TTA)."""
    if pos_resample not in POS_RESAMPLE:
        raise ValueError(f'pos_resample={pos_resample!r}: use one of {", ".join(POS_RESAMPLE)}')
    if pos_resample == 'dinov2':
        from timm.models.vision_transformer import VisionTransformer
        if not isinstance(model, VisionTransformer) or getattr(model, 'pos_embed', None) is None:
            raise ValueError(f"pos_resample='dinov2' is DINOv2's rule for a learned position grid; "
                             f"{type(model).__name__} has none to resample that way (use 'timm')")
        model._pos_embed = _pos_embed_dinov2.__get__(model)
    return model


def convert_to_timm(state_dict: Dict[str, torch.Tensor], model: nn.Module,
                    patch_resample: str = 'pinv') -> Dict[str, torch.Tensor]:
    """Official (or timm) layout -> ``model``'s timm layout, resampling patch kernel and position grid.

    ``patch_resample``: ``'pinv'`` (timm's pseudo-inverse kernel, antialiased positions) or ``'bicubic'``
    (plain bicubic interpolation of both, the official SoRA/SoMA conversion: their released models
    need it); see :func:`resample_bicubic`.
    """
    check_patch_resample(patch_resample)
    state_dict = dict(state_dict)
    for prefix in ('backbone.vit.', 'vit.', 'backbone.'):  # mmdg / mmseg checkpoints of a backbone
        if any(k.startswith(prefix + 'blocks.') for k in state_dict):
            state_dict = {k[len(prefix):]: v for k, v in state_dict.items() if k.startswith(prefix)}
            break
    if patch_resample == 'bicubic':
        # resampled here to the model's sizes, so that timm's filter below leaves both tensors alone
        state_dict = resample_bicubic(state_dict, model)
    return _filter_fn(model)(state_dict, model)


def check_keys(state_dict: Dict[str, torch.Tensor], own: Dict[str, torch.Tensor], source: str, target: str,
               origin: Optional[Dict[str, str]] = None) -> None:
    """Raise :class:`CheckpointError` listing the keys of ``own`` (name -> tensor of the wanted shape) that
    ``state_dict`` lacks, those it has in excess and those of another shape, if any. ``origin`` names
    where a converted key came from (shown next to it)."""
    def name(k):
        return f'{k} (from {origin[k]})' if origin and origin.get(k, k) != k else k
    missing = sorted(k for k in own if k not in state_dict)
    unexpected = sorted(name(k) for k in state_dict if k not in own and not _PRETRAIN_ONLY.match(k))
    shapes = sorted(f'{name(k)}: checkpoint {tuple(v.shape)} vs model {tuple(own[k].shape)}'
                    for k, v in state_dict.items() if k in own and v.shape != own[k].shape)
    # integer or boolean tensors where the model holds weights: load_state_dict would cast them silently
    # (a file of another kind, e.g. labels or indices, passed as weights)
    kinds = sorted(f'{name(k)}: checkpoint {v.dtype} vs model {own[k].dtype}' for k, v in state_dict.items()
                   if k in own and own[k].is_floating_point() and not v.is_floating_point())
    if missing or unexpected or shapes or kinds:
        def fmt(title, items):
            return f'\n  {title} ({len(items)}): ' + ', '.join(items[:20]) + (' ...' if len(items) > 20 else '') \
                if items else ''
        raise CheckpointError(f'{source} does not fit {target}:' + fmt('missing', missing)
                              + fmt('unexpected', unexpected) + fmt('mis-shaped', shapes)
                              + fmt('not floating-point weights', kinds))


def check_fit(state_dict: Dict[str, torch.Tensor], model: nn.Module, source: str = 'checkpoint',
              origin: Optional[Dict[str, str]] = None) -> None:
    """Raise :class:`CheckpointError` listing missing, unexpected and mis-shaped keys, if any."""
    check_keys(state_dict, model.state_dict(), source,
               f'{type(model).__name__} ({sum(p.numel() for p in model.parameters()):,} parameters)', origin)


def load_vit_weights(model: nn.Module, path: str, patch_resample: str = 'pinv') -> nn.Module:
    """Load a local DINOv2 / EVA02 checkpoint (official or timm layout) into a timm ``model``, strictly.
    ``patch_resample``: see :func:`convert_to_timm` (``'bicubic'`` reproduces the official SoRA/SoMA
    conversion, ``'pinv'`` is timm's)."""
    state = convert_to_timm(unwrap_state_dict(safe_torch_load(path, 'cpu')), model, patch_resample)
    check_fit(state, model, source=f'checkpoint {path}')
    own = model.state_dict()
    model.load_state_dict({k: v for k, v in state.items() if k in own}, strict=True)
    return model


def timm_to_official_dinov2(state_dict: Dict[str, torch.Tensor], model: nn.Module) -> Dict[str, torch.Tensor]:
    """The inverse of timm's DINOv2 conversion: a timm DINOv2 state dict in the layout of Meta's
    ``dinov2_vit*14[_reg4]_pretrain.pth`` (``mask_token`` zero, register tokens and SwiGLU renamed)."""
    mlp = model.blocks[0].mlp
    # DINOv2-g's packed SwiGLU: timm's fc1 / fc2 are Meta's w12 / w3 (fc1 emits both halves of the gate)
    packed_swiglu = mlp.fc1.out_features == 2 * mlp.fc2.in_features
    out = {}
    for k, v in state_dict.items():
        if k.startswith(('head.', 'fc_norm.')):
            continue
        if packed_swiglu:
            k = k.replace('mlp.fc1.', 'mlp.w12.').replace('mlp.fc2.', 'mlp.w3.')
        out[k] = v
    if 'reg_token' in out:
        # timm keeps cls/register tokens out of pos_embed (no_embed_class); the official layout adds a
        # cls position: store a zero one so that cls_token + pos_embed[:, 0] is timm's cls_token.
        out['register_tokens'] = out.pop('reg_token')
        pos = out['pos_embed']
        out['pos_embed'] = torch.cat([torch.zeros_like(pos[:, :1]), pos], dim=1)
    out['mask_token'] = torch.zeros(1, out['cls_token'].shape[-1])
    return out


def timm_to_official_dinov3(state_dict: Dict[str, torch.Tensor], model: nn.Module) -> Dict[str, torch.Tensor]:
    """The inverse of timm's DINOv3 conversion: a timm DINOv3 (``Eva``) state dict in the layout of Meta's
    original DINOv3 checkpoints (``storage_tokens``, ``ls1/ls2.gamma``, a fused ``qkv.bias`` whose k part is
    zero, the 7B's SwiGLU as ``mlp.w1/w2/w3``, a zero ``mask_token``), for exporting and for tests."""
    swiglu = any('mlp.fc1_g.' in k for k in state_dict)  # then timm's fc2 is Meta's w3
    out = {}
    for k, v in state_dict.items():
        if k.startswith(('head.', 'fc_norm.')) or k.startswith('rope.'):
            continue
        if k.endswith('.q_bias'):
            v_bias = state_dict[k[:-len('q_bias')] + 'v_bias']
            out[k[:-len('q_bias')] + 'qkv.bias'] = torch.cat([v, torch.zeros_like(v), v_bias])
            continue
        if k.endswith('.v_bias'):
            continue
        k = k.replace('reg_token', 'storage_tokens').replace('gamma_1', 'ls1.gamma').replace('gamma_2', 'ls2.gamma')
        k = k.replace('mlp.fc1_g', 'mlp.w1').replace('mlp.fc1_x', 'mlp.w2')
        if swiglu:
            k = k.replace('mlp.fc2', 'mlp.w3')
        out[k] = v
    out['mask_token'] = torch.zeros(1, 1, model.embed_dim)
    return out

