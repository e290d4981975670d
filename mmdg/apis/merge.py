"""Fold a trained model's adapters into plain weights, verified and written atomically
(``tools/merge_adapters.py``). Works for any mmengine model whose backbone holds adapters
(segmentors and detectors with ``TimmViT``), from full or adapter-only checkpoints."""
import copy
import os.path as osp
from typing import Optional

import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope

from mmdg.adapters import adapter_modules, merge_adapters
from mmdg.utils.checkpoint import CheckpointError, atomic_save, build_and_load, checkpoint_exists


class MergeMismatchError(CheckpointError):
    """The merged model does not compute what the adapted one does."""


def build_model(cfg: Config, checkpoint: Optional[str] = None) -> torch.nn.Module:
    """The config's model in eval mode, with ``checkpoint`` loaded through
    :func:`mmdg.utils.checkpoint.build_and_load`; without a checkpoint, no ``pretrained`` file is read
    (the caller loads every weight)."""
    init_default_scope(cfg.get('default_scope', 'mmdg'))
    from mmdg.registry import MODELS
    cfg = copy.deepcopy(cfg)

    def build():
        model = MODELS.build(cfg.model)
        model.init_weights()
        return model
    if checkpoint is not None:
        return build_and_load(cfg.model, checkpoint, build).eval()
    if 'backbone' in cfg.model:
        cfg.model.backbone.pretrained = None
    return build().eval()


def _outputs(model, inputs) -> list:
    """The backbone's (and neck's) features: merging changes only the backbone and every other weight is
    copied by a strict state-dict load, so this is the whole difference, for segmentors and detectors
    alike (their heads need data samples to run)."""
    with torch.no_grad():
        out = model.extract_feat(inputs)
    flat = []

    def walk(o):
        if torch.is_tensor(o):
            flat.append(o.float())
        elif isinstance(o, (list, tuple)):
            for x in o:
                walk(x)
        elif isinstance(o, dict):
            for x in o.values():
                walk(x)
    walk(out)
    return flat


def plain_config(cfg: Config) -> Config:
    """The same config without adapters (what the merged checkpoint loads into)."""
    plain = copy.deepcopy(cfg)
    plain.model.backbone.adapter = None
    return plain


def merge_checkpoint(config: str, checkpoint: str, out: str, plain: Optional[str] = None,
                     backbone_only: Optional[str] = None, input_size=(64, 64), rtol: float = 1e-4,
                     overwrite: bool = False) -> dict:
    """Merge, check the plain model against the adapted one on a random input, then write ``out``.
    ``backbone_only``: ``'timm'`` or ``'official'`` (Meta's DINOv2 layout) writes only the merged ViT."""
    for path, exists in ((config, osp.isfile), (checkpoint, checkpoint_exists)):
        if not exists(path):
            raise FileNotFoundError(f'{path} does not exist')
    if osp.realpath(out) == osp.realpath(checkpoint):
        raise FileExistsError(f'refusing to overwrite the input checkpoint {checkpoint}; give another OUT')
    if osp.exists(out) and not overwrite:
        raise FileExistsError(f'{out} exists; pass --overwrite to replace it')
    cfg = Config.fromfile(config)
    model = build_model(cfg, checkpoint)
    n_adapters = len(adapter_modules(model))
    if not n_adapters:
        raise ValueError(f'{config}: the model holds no adapter, nothing to merge')
    torch.manual_seed(0)
    inputs = torch.randn(1, 3, *input_size)
    before = _outputs(model, inputs)
    merge_adapters(model)
    plain_cfg = Config.fromfile(plain) if plain else plain_config(cfg)
    target = build_model(plain_cfg)
    try:
        target.load_state_dict(model.state_dict(), strict=True)
    except RuntimeError as exc:
        raise CheckpointError(f'the merged weights do not fit the plain config: {exc}') from exc
    after = _outputs(target, inputs)
    worst = max(((a - b).abs().max() / b.abs().max().clamp_min(1e-12)).item() for a, b in zip(after, before))
    if len(after) != len(before) or worst > rtol:
        raise MergeMismatchError(f'merged model differs from the adapted one: relative error {worst:.2e} > {rtol:g}; '
                                 'nothing written')
    if backbone_only:
        vit = target.backbone.vit
        state = vit.state_dict()
        if backbone_only == 'official':
            from mmdg.convert.vit import timm_to_official_dinov2
            state = timm_to_official_dinov2(state, vit)
        atomic_save(state, out)
    else:
        atomic_save(dict(state_dict=target.state_dict(), meta=dict(merged_from=osp.abspath(checkpoint),
                                                                    adapters=n_adapters)), out)
    return dict(adapters=n_adapters, relative_error=worst, out=out)
