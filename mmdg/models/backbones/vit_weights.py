"""Building the timm ViTs mmdg uses and loading official DINOv2 / EVA02 weights into them.

Key conversion and patch / position resampling are timm's own ``checkpoint_filter_fn`` (it knows the
official DINOv2 and EVA02 layouts); this module adds architecture names, checks that report every
missing, unexpected and mis-shaped key, and the inverse mapping to the official DINOv2 layout (for
exporting merged backbones and for tests).
"""
from __future__ import annotations

import re
from typing import Dict, Tuple, Union

import timm
import torch
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
}

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


def convert_to_timm(state_dict: Dict[str, torch.Tensor], model: nn.Module) -> Dict[str, torch.Tensor]:
    """Official (or timm) layout -> ``model``'s timm layout, resampling patch kernel and position grid."""
    state_dict = dict(state_dict)
    for prefix in ('backbone.vit.', 'vit.', 'backbone.'):  # mmdg / mmseg checkpoints of a backbone
        if any(k.startswith(prefix + 'blocks.') for k in state_dict):
            state_dict = {k[len(prefix):]: v for k, v in state_dict.items() if k.startswith(prefix)}
            break
    return _filter_fn(model)(state_dict, model)


def check_fit(state_dict: Dict[str, torch.Tensor], model: nn.Module, source: str = 'checkpoint') -> None:
    """Raise :class:`CheckpointError` listing missing, unexpected and mis-shaped keys, if any."""
    own = model.state_dict()
    missing = sorted(k for k in own if k not in state_dict)
    unexpected = sorted(k for k in state_dict if k not in own and not _PRETRAIN_ONLY.match(k))
    shapes = sorted(f'{k}: checkpoint {tuple(v.shape)} vs model {tuple(own[k].shape)}'
                    for k, v in state_dict.items() if k in own and v.shape != own[k].shape)
    if missing or unexpected or shapes:
        def fmt(title, items):
            return f'\n  {title} ({len(items)}): ' + ', '.join(items[:20]) + (' ...' if len(items) > 20 else '') \
                if items else ''
        raise CheckpointError(f'{source} does not fit {type(model).__name__} '
                              f'({sum(p.numel() for p in model.parameters()):,} parameters):'
                              + fmt('missing', missing) + fmt('unexpected', unexpected)
                              + fmt('mis-shaped', shapes))


def load_vit_weights(model: nn.Module, path: str) -> nn.Module:
    """Load a local DINOv2 / EVA02 checkpoint (official or timm layout) into a timm ``model``, strictly."""
    state = convert_to_timm(unwrap_state_dict(safe_torch_load(path, 'cpu')), model)
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
