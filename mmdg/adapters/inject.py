"""Place adapters into a ViT by module-name patterns and a block range, and fold them back out.

Works on any model with a ``blocks`` ``nn.ModuleList`` of transformer blocks (timm's
VisionTransformer, Eva, and mmdg's backbones, which hold a timm model), with no OpenMMLab import.

``inject_adapters`` is all-or-nothing: it resolves the config, plans every layer it will wrap and
builds every adapter once on the meta device before it touches the model, so a wrong config raises
with the model unchanged. It composes: a later call on other layers keeps the earlier adapters (and
every ``requires_grad`` flag it finds); a call on layers that already hold an adapter raises, and an
adapter never wraps another one.
"""
from __future__ import annotations

import fnmatch
import warnings
from typing import Dict, List, Optional, Tuple, Union

import torch
from torch import nn

from .base import ADAPTERS, AdapterLinear, BlockAdapter, check_alpha
from .families import SAME_INPUT, TARGETS

Adapter = Union[AdapterLinear, BlockAdapter]

#: Every linear layer name of a block over the ViT families (``mmdg.adapters.families``).
ALL_LINEARS = TARGETS['all']
TRAIN_BIAS = (None, False, True, 'blocks')


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
    if cls.target_kind == 'block':
        full = dict(type=name, targets=None, blocks=None, **cls.defaults)
    else:
        full = dict(type=name, targets=None, blocks=None, split_qkv=True, train_bias=None, **cls.defaults)
    unknown = set(cfg) - set(full)
    if unknown:
        raise KeyError(f'{name} does not take {sorted(unknown)}; its fields are {sorted(full)}')
    full.update(cfg)
    full['type'] = name
    if 'alpha' in full:
        check_alpha(full['alpha'], name)
    if cls.target_kind == 'block' and full['targets'] is not None:
        raise ValueError(f'{name} wraps whole transformer blocks (target_kind="block"): its "targets" must be '
                         f'None, got {full["targets"]!r}; choose the blocks with "blocks"')
    if full.get('train_bias', None) not in TRAIN_BIAS:
        raise ValueError(f'train_bias must be one of {TRAIN_BIAS}, got {full["train_bias"]!r}')
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


def _eva_attention(block: nn.Module, rel: str) -> Optional[nn.Module]:
    parent = block.get_submodule(rel.rpartition('.')[0]) if '.' in rel else block
    if rel.rsplit('.', 1)[-1] != 'qkv' or not hasattr(parent, 'qkv_bias_separate'):
        return None
    return parent


def _adapt_eva_fused_qkv(block: nn.Module, rel: str, adapter: AdapterLinear) -> None:
    """timm's EVA attention with a fused qkv keeps its biases outside the Linear (``q_bias``, ``v_bias``)
    and by default calls ``F.linear(x, qkv.weight, bias)``, which would bypass the adapter. Switch it to
    its own ``qkv(x) + bias`` path (the same function) and treat those biases as the layer's bias."""
    parent = _eva_attention(block, rel)
    if parent is None:
        return
    parent.qkv_bias_separate = True
    if getattr(parent, 'q_bias', None) is not None and adapter.base.bias is None:
        train = adapter.bias_trainable
        parent.q_bias.requires_grad_(train)
        parent.v_bias.requires_grad_(train)
        adapter.outside_parameters = [parent.q_bias, parent.v_bias]


def _adapter_paths(block: nn.Module) -> Dict[str, Adapter]:
    return {rel: m for rel, m in block.named_modules() if isinstance(m, (AdapterLinear, BlockAdapter))}


def _owner(rel: str, paths: Dict[str, Adapter]) -> Optional[Tuple[str, Adapter]]:
    """The adapter at ``rel`` or around it."""
    for path, adapter in paths.items():
        if rel == path or path == '' or rel.startswith(path + '.'):
            return path, adapter
    return None


def _type_name(adapter: nn.Module) -> str:
    return next((k for k, c in ADAPTERS.items() if type(adapter) is c), type(adapter).__name__)


def _input_group(rel: str) -> Optional[Tuple[str, int]]:
    parent, _, last = rel.rpartition('.')
    for g, names in enumerate(SAME_INPUT):
        if last in names:
            return parent, g
    return None


def _plan_linears(cfg: Dict, cls, blocks_name: str, blocks: nn.ModuleList, start: int, end: int):
    """``[(idx, rel, linear, num_slices, group)]`` for every layer to wrap, or a ValueError."""
    explicit = cfg['targets'] is not None
    targets = cfg['targets'] if explicit else TARGETS[cls.default_targets]
    targets = (targets,) if isinstance(targets, str) else tuple(targets)
    hits = {p: 0 for p in targets}
    plan, conflicts = [], []
    for idx in range(start, end):
        block = blocks[idx]
        if isinstance(block, BlockAdapter):
            raise ValueError(f'{blocks_name}.{idx} is wrapped by a {_type_name(block)} block adapter; adapters do '
                             f'not nest, so {cfg["type"]} cannot adapt its layers (choose other blocks)')
        paths = _adapter_paths(block)
        for rel, module in block.named_modules():
            if not isinstance(module, (nn.Linear, AdapterLinear)):
                continue
            matched = [p for p in targets if _matches(rel, p)]
            if not matched:
                continue
            for p in matched:
                hits[p] += 1
            owner = _owner(rel, paths)
            if owner is not None:
                conflicts.append(f'{blocks_name}.{idx}.{rel} (inside the {_type_name(owner[1])} adapter at '
                                 f'{blocks_name}.{idx}.{owner[0]})' if owner[0] != rel else
                                 f'{blocks_name}.{idx}.{rel} (already a {_type_name(owner[1])} adapter)')
                continue
            slices = 3 if cfg['split_qkv'] and _is_fused_qkv(rel, module) else 1
            plan.append((idx, rel, module, slices, _input_group(rel)))
    if conflicts:
        more = f' and {len(conflicts) - 3} more' if len(conflicts) > 3 else ''
        raise ValueError(f'{cfg["type"]}: targets {list(targets)} match layers that already hold an adapter: '
                         f'{", ".join(conflicts[:3])}{more}. Adapters do not stack or nest: target other layers '
                         f'or blocks, or merge_adapters() first')
    missing = [p for p, n in hits.items() if n == 0]
    if (explicit and missing) or not plan:
        names = sorted({rel for rel, m in blocks[start].named_modules() if isinstance(m, nn.Linear)})
        raise ValueError(f'target pattern(s) {missing or list(targets)} matched no nn.Linear in blocks '
                         f'[{start}, {end}); the linear layers of block {start} are {names}')
    return plan


def _build_linears(cls, plan, cfg: Dict, method_kwargs: Dict, shared, blocks_name: str, on_meta: bool):
    """One adapter per plan entry; ``on_meta`` builds them around meta-device stand-ins (a dry run)."""
    built, first_of_group = [], {}
    for idx, rel, linear, slices, group in plan:
        base = linear
        if on_meta:
            base = nn.Linear(linear.in_features, linear.out_features, bias=linear.bias is not None,
                             device='meta', dtype=linear.weight.dtype)
        # 'blocks' trains every bias of the range, so the adapted layers' biases among them
        train_bias = True if cfg['train_bias'] == 'blocks' else cfg['train_bias']
        kwargs = dict(method_kwargs, num_slices=slices, train_bias=train_bias, name=f'{blocks_name}.{idx}.{rel}')
        if shared is not None:
            kwargs['shared'] = shared
        key = (idx, *group) if group is not None else None
        if cls.shares_input_branch and key in first_of_group:
            kwargs['tie_to'] = first_of_group[key]
        adapter = cls(base, **kwargs)
        if key is not None:
            first_of_group.setdefault(key, adapter)
        built.append(adapter)
    return built


def _check_range(cfg: Dict, blocks: nn.ModuleList) -> Tuple[int, int]:
    start, end = cfg['blocks'] if cfg['blocks'] is not None else (0, len(blocks))
    if not 0 <= start < end <= len(blocks):
        raise ValueError(f'block range [{start}, {end}) is outside the model, which has {len(blocks)} '
                         f'blocks (valid: 0 <= start < end <= {len(blocks)})')
    return start, end


def inject_adapters(model: nn.Module, cfg: Dict) -> nn.Module:
    """Wrap the targeted layers (or blocks) of ``model`` in adapters, in place.

    ``cfg``: ``type`` (one of :data:`ADAPTERS`) and optionally ``blocks`` (half-open ``(start, end)``;
    default all) and the method's own fields (``r``, ``alpha``, ...; see each class's ``defaults``).
    Linear adapters also take ``targets`` (name patterns inside a block; default: every linear layer
    of both timm namings, ALoRE: the input-side ones, HTA: the attention ones), ``split_qkv`` (treat a
    fused qkv as three matrices; default True) and ``train_bias`` (``None``: the method's recipe;
    ``True``: the biases of the adapted layers; ``'blocks'``: every linear bias in the block range;
    ``False``: none). Block adapters (``target_kind == 'block'``) wrap ``blocks[idx]`` for every index
    of the range; their ``targets`` must be None.

    The first call freezes the model, so afterwards only adapter parameters (and the chosen biases)
    require gradients; a later call keeps every flag it finds and adds its own adapters.
    On a meta-device model the adapters get their shapes only; SVD-initialised methods warn.
    """
    cfg = resolve_config(cfg)
    cls = ADAPTERS[cfg['type']]
    blocks_name, blocks = find_blocks(model)
    start, end = _check_range(cfg, blocks)
    method_kwargs = {k: cfg[k] for k in cls.defaults}
    like = next(model.parameters())
    first_call = not adapter_modules(model)

    # 1. validate: plan every change and dry-run every constructor on meta stand-ins
    if cls.target_kind == 'block':
        for idx in range(start, end):
            block = blocks[idx]
            held = _adapter_paths(block)
            if held:
                path, other = next(iter(held.items()))
                where = f'is already wrapped by a {_type_name(other)} adapter' if path == '' else \
                    f'holds a {_type_name(other)} adapter at {blocks_name}.{idx}.{path}'
                raise ValueError(f'{cfg["type"]}: {blocks_name}.{idx} {where}; adapters do not stack or nest: '
                                 'choose other blocks, or merge_adapters() first')
    else:
        plan = _plan_linears(cfg, cls, blocks_name, blocks, start, end)
        probe_shared = cls.make_shared(method_kwargs, torch.empty(0, device='meta', dtype=like.dtype))
        with warnings.catch_warnings():
            warnings.simplefilter('ignore')
            _build_linears(cls, plan, cfg, method_kwargs, probe_shared, blocks_name, on_meta=True)
    if like.is_meta and cls.needs_weights:
        warnings.warn(f'{cfg["type"]} on a meta-device model: the SVD of meta tensors has no values, so the '
                      'adapters get the right shapes (enough to count parameters) but no initialisation. '
                      'Inject after the real weights are loaded to train.', UserWarning, stacklevel=2)

    # 2. change the model; constructors touch only the module they wrap, so on an unexpected failure
    # the flags are restored and any weight already decomposed is put back
    flags = {p: p.requires_grad for p in model.parameters()}
    if first_call:
        model.requires_grad_(False)
    shared = cls.make_shared(method_kwargs, like)
    built: List[Adapter] = []
    try:
        if cls.target_kind == 'block':
            for idx in range(start, end):
                built.append(cls(blocks[idx], index=idx, num_blocks=len(blocks), name=f'{blocks_name}.{idx}',
                                 shared=shared, **method_kwargs))
        else:
            built = _build_linears(cls, plan, cfg, method_kwargs, shared, blocks_name, on_meta=False)
    except Exception:
        with torch.no_grad():
            for adapter in built:
                if adapter.needs_weights and not like.is_meta:
                    adapter.base.weight.copy_(adapter.merged_weight())
        for p, flag in flags.items():
            p.requires_grad_(flag)
        raise
    if cls.target_kind == 'block':
        for idx, adapter in zip(range(start, end), built):
            blocks[idx] = adapter
    else:
        for (idx, rel, _, _, _), adapter in zip(plan, built):
            _set_submodule(blocks[idx], rel, adapter)
            _adapt_eva_fused_qkv(blocks[idx], rel, adapter)
        if cfg['train_bias'] == 'blocks':
            _train_block_biases(blocks, start, end)
    model.mmdg_adapter_cfgs = [*getattr(model, 'mmdg_adapter_cfgs', []), cfg]  # what was injected
    return model


def _train_block_biases(blocks: nn.ModuleList, start: int, end: int) -> None:
    """Every linear bias of blocks ``[start, end)``, EVA's separate q/v biases included."""
    for idx in range(start, end):
        for module in blocks[idx].modules():
            if isinstance(module, nn.Linear) and module.bias is not None:
                module.bias.requires_grad_(True)
            for extra in ('q_bias', 'v_bias'):
                if isinstance(getattr(module, extra, None), nn.Parameter):
                    getattr(module, extra).requires_grad_(True)


def adapter_modules(model: nn.Module) -> List[Tuple[str, Adapter]]:
    """Every adapter of ``model``, linear and block kinds."""
    return [(n, m) for n, m in model.named_modules() if isinstance(m, (AdapterLinear, BlockAdapter))]


def merge_adapters(model: nn.Module) -> nn.Module:
    """Fold every mergeable adapter into a plain ``nn.Linear``, in place; the result computes the same
    function. Non-mergeable adapters (block adapters) stay in place, with a warning naming them."""
    kept = []
    for name, module in adapter_modules(model):
        if module.mergeable:
            _set_submodule(model, name, module.merge())
        else:
            kept.append((name, module))
    if kept:
        names = ', '.join(n for n, _ in kept[:4]) + (f' and {len(kept) - 4} more' if len(kept) > 4 else '')
        kinds = sorted({_type_name(m) for _, m in kept})
        warnings.warn(f'merge_adapters: {len(kept)} {"/".join(kinds)} adapter(s) cannot be folded into plain '
                      f'weights and stay in the model: {names}', UserWarning, stacklevel=2)
    if hasattr(model, 'mmdg_adapter_cfgs'):
        left = {_type_name(m) for _, m in kept}
        model.mmdg_adapter_cfgs = [c for c in model.mmdg_adapter_cfgs if c['type'] in left]
        if not model.mmdg_adapter_cfgs:
            del model.mmdg_adapter_cfgs
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
