"""Place adapters into a ViT by module-name patterns and a block range, and fold them back out.

Works on any model with a ``blocks`` ``nn.ModuleList`` of transformer blocks (timm's
VisionTransformer, Eva, and mmdg's backbones, which hold a timm model), with no OpenMMLab import.
"""
from __future__ import annotations

import fnmatch
from typing import Dict, List, Tuple

import torch
from torch import nn

from .alore import ALoRELinear
from .base import AdapterLinear
from .clora import CLoRALinear
from .hta import HTALinear
from .lora import LoRALinear
from .pissa import PiSSALinear
from .sora import SoRALinear

ADAPTERS = {
    'LoRA': LoRALinear,
    'PiSSA': PiSSALinear,
    'SoRA': SoRALinear,
    'ALoRE': ALoRELinear,
    'HTA': HTALinear,
    'CLoRA': CLoRALinear,
}

#: Linear layers of a transformer block in both of timm's namings: DINOv2 / EVA02-S use a fused
#: ``attn.qkv`` and ``mlp.fc1``; EVA02-B/L use ``attn.{q,k,v}_proj`` and a SwiGLU ``mlp.fc1_g/fc1_x``.
ALL_LINEARS = ('qkv', 'q_proj', 'k_proj', 'v_proj', 'proj', 'fc1', 'fc1_g', 'fc1_x', 'fc2')
#: ALoRE sits in front of the layers that read the block's normalised input (METHODS.md §2).
INPUT_LINEARS = ('qkv', 'q_proj', 'k_proj', 'v_proj', 'fc1', 'fc1_g', 'fc1_x')
DEFAULT_TARGETS = {'ALoRE': INPUT_LINEARS, 'HTA': ('qkv', 'q_proj', 'k_proj', 'v_proj', 'proj')}

def adapter_class(name: str):
    """The adapter class registered as ``name`` (case-insensitive)."""
    for key, cls in ADAPTERS.items():
        if key.lower() == str(name).lower():
            return key, cls
    raise KeyError(f'unknown adapter type {name!r}; known: {", ".join(ADAPTERS)}')


def resolve_config(cfg: Dict) -> Dict:
    """The full config of a method: ``cfg`` over the method's documented defaults, validated."""
    if 'type' not in cfg:
        raise KeyError(f'an adapter config needs a "type" (one of {", ".join(ADAPTERS)}); got {cfg}')
    name, cls = adapter_class(cfg['type'])
    full = dict(type=name, targets=None, blocks=None, split_qkv=True, train_bias=None, **cls.defaults)
    unknown = set(cfg) - set(full)
    if unknown:
        raise KeyError(f'{name} does not take {sorted(unknown)}; its fields are {sorted(full)}')
    full.update(cfg)
    full['type'] = name
    return full


def find_blocks(model: nn.Module) -> Tuple[str, nn.ModuleList]:
    """The container of transformer blocks: the first ``nn.ModuleList`` / ``nn.Sequential`` named ``blocks``."""
    for name, module in model.named_modules():
        if isinstance(module, (nn.ModuleList, nn.Sequential)) and name.split('.')[-1] == 'blocks':
            return name, module
    raise ValueError(f'{type(model).__name__} has no nn.ModuleList or nn.Sequential named "blocks"; '
                     'inject_adapters needs the transformer blocks of a ViT')


def _matches(rel_name: str, pattern: str) -> bool:
    """A pattern matches the module's name inside its block (``attn.qkv``) or its last part (``qkv``)."""
    return fnmatch.fnmatchcase(rel_name, pattern) or fnmatch.fnmatchcase(rel_name.rsplit('.', 1)[-1], pattern)


def _set_submodule(root: nn.Module, name: str, module: nn.Module) -> None:
    parent, _, child = name.rpartition('.')
    setattr(root.get_submodule(parent) if parent else root, child, module)


def _is_fused_qkv(name: str, linear: nn.Linear) -> bool:
    return name.rsplit('.', 1)[-1] == 'qkv' and linear.out_features == 3 * linear.in_features


def _adapt_eva_fused_qkv(block: nn.Module, rel: str, adapter: AdapterLinear) -> None:
    """timm's EVA attention with a fused qkv keeps its biases outside the Linear (``q_bias``, ``v_bias``)
    and by default calls ``F.linear(x, qkv.weight, bias)``, which would bypass the adapter. Switch it to
    its own ``qkv(x) + bias`` path (the same function) and treat those biases as the layer's bias."""
    parent = block.get_submodule(rel.rpartition('.')[0]) if '.' in rel else block
    if rel.rsplit('.', 1)[-1] != 'qkv' or not hasattr(parent, 'qkv_bias_separate'):
        return
    parent.qkv_bias_separate = True
    if getattr(parent, 'q_bias', None) is not None and adapter.base.bias is None:
        train = adapter.bias_trainable
        parent.q_bias.requires_grad_(train)
        parent.v_bias.requires_grad_(train)


def inject_adapters(model: nn.Module, cfg: Dict) -> nn.Module:
    """Replace the targeted ``nn.Linear`` layers of ``model`` by adapters, in place, and freeze the rest.

    ``cfg``: ``type`` (one of :data:`ADAPTERS`) and optionally ``targets`` (name patterns inside a
    block; default: every linear layer of both timm namings, ALoRE: the input-side ones, HTA: the
    attention ones), ``blocks`` (half-open ``(start, end)``; default all), ``split_qkv`` (treat a fused
    qkv as three matrices; default True), ``train_bias`` (default: the method's recipe) and the
    method's own fields (``r``, ``alpha``, ...; see each class's ``defaults``).
    After the call only adapter parameters (and the recipe's biases) require gradients.
    """
    cfg = resolve_config(cfg)
    cls = ADAPTERS[cfg['type']]
    blocks_name, blocks = find_blocks(model)
    start, end = cfg['blocks'] if cfg['blocks'] is not None else (0, len(blocks))
    if not 0 <= start < end <= len(blocks):
        raise ValueError(f'block range [{start}, {end}) is outside the model, which has {len(blocks)} '
                         f'blocks (valid: 0 <= start < end <= {len(blocks)})')
    explicit = cfg['targets'] is not None
    targets = tuple(cfg['targets']) if explicit else DEFAULT_TARGETS.get(cfg['type'], ALL_LINEARS)
    if isinstance(targets, str):
        targets = (targets,)
    method_kwargs = {k: v for k, v in cfg.items() if k in cls.defaults}
    like = next(model.parameters())
    shared = cls.make_shared(method_kwargs, like) if hasattr(cls, 'make_shared') else None

    model.requires_grad_(False)
    hits = {p: 0 for p in targets}
    for idx in range(start, end):
        block = blocks[idx]
        for rel, module in list(block.named_modules()):
            if not isinstance(module, nn.Linear) or isinstance(module, AdapterLinear):
                continue
            matched = [p for p in targets if _matches(rel, p)]
            if not matched:
                continue
            for p in matched:
                hits[p] += 1
            kwargs = dict(method_kwargs, num_slices=3 if cfg['split_qkv'] and _is_fused_qkv(rel, module) else 1,
                          train_bias=cfg['train_bias'], name=f'{blocks_name}.{idx}.{rel}')
            if shared is not None:
                kwargs['shared'] = shared
            adapter = cls(module, **kwargs)
            _set_submodule(block, rel, adapter)
            _adapt_eva_fused_qkv(block, rel, adapter)
    missing = [p for p, n in hits.items() if n == 0]
    if (explicit and missing) or not any(hits.values()):
        names = sorted({rel for rel, m in blocks[start].named_modules() if isinstance(m, nn.Linear)})
        raise ValueError(f'target pattern(s) {missing} matched no nn.Linear in blocks [{start}, {end}); '
                         f'the linear layers of block {start} are {names}')
    model.mmdg_adapter_cfg = cfg  # what was injected, for checkpoints and merging tools
    return model


def adapter_modules(model: nn.Module) -> List[Tuple[str, AdapterLinear]]:
    return [(n, m) for n, m in model.named_modules() if isinstance(m, AdapterLinear)]


def merge_adapters(model: nn.Module) -> nn.Module:
    """Fold every adapter into a plain ``nn.Linear``, in place; the result computes the same function."""
    for name, module in adapter_modules(model):
        _set_submodule(model, name, module.merge())
    if hasattr(model, 'mmdg_adapter_cfg'):
        del model.mmdg_adapter_cfg
    return model


def aux_losses(model: nn.Module) -> Dict[str, torch.Tensor]:
    """Sum of the adapters' auxiliary losses, keyed by loss name (empty if no adapter has one)."""
    out: Dict[str, torch.Tensor] = {}
    for _, module in adapter_modules(model):
        if module.aux_loss_name is None:
            continue
        value = module.aux_loss()
        if value is not None:
            out[module.aux_loss_name] = out.get(module.aux_loss_name, 0) + value
    return out


def trainable_parameter_names(model: nn.Module) -> set:
    """Every name under which a parameter requiring gradients appears (shared ones under each owner)."""
    return {n for n, p in model.named_parameters(remove_duplicate=False) if p.requires_grad}


def trainable_state_dict(model: nn.Module, prefix: str = '') -> Dict[str, torch.Tensor]:
    """The entries of ``model.state_dict()`` whose parameters require gradients (adapter-only checkpoints)."""
    names = trainable_parameter_names(model)
    return {prefix + k: v for k, v in model.state_dict().items() if k in names}


def count_parameters(model: nn.Module, trainable_only: bool = True) -> int:
    """Unique parameters (shared ones counted once)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)
