#!/usr/bin/env python
"""Key manifest of a released SoMA / Rein segmentation checkpoint, built from the OFFICIAL model code.

    python make_seg_manifest.py CHECKOUT CONFIG OUT.json [--kind soma|rein]

CHECKOUT: an extracted official repository (SoMA or Rein; both ship a package named ``rein``).
CONFIG:   an official config, relative to CHECKOUT or absolute.
Writes {"model": {name: shape}, "released": {name: shape}[, "released_ema": {...}], "about": {...}}.

* model:    every tensor of the official segmentor (what nn.Module.state_dict would hold without any
            state_dict override; Rein's backbone overrides state_dict, see "released").
* released: SoMA -- tools/extract_soma_weights.py:filter_keys applied (imported from the checkout, not
            copied) to the checkpoint's "state_dict" (mmengine Runner.save_checkpoint saves
            model.state_dict()); Rein -- model.state_dict() itself, in which
            ReinsDinoVisionTransformer.state_dict (rein/models/backbones/reins_dinov2.py:42-49) drops every
            backbone key without "rein": that is the "rein and head" file (no extraction tool exists).
* released_ema (SoMA configs with an EMAHook only): filter_keys applied to mmengine's
            ExponentialMovingAverage(model).state_dict() ("steps" + "module.*"), i.e. "ema_state_dict".
Nothing is loaded; the model is built under ``torch.device('meta')``. Third-party modules the official
package imports but these models never use (peft, xformers, einops, mmpretrain) are stubbed in
sys.modules when absent: peft.utils.integrations.gather_params_ctx becomes a no-op context manager.
torch.linspace is made to default to the CPU while building (the drop-path rates call .item() on it).
The official SVD (sora.py:199, torch.linalg.svd) runs on meta tensors as it is (torch >= 2.x meta kernel).
"""
import argparse
import contextlib
import importlib.util
import json
import os
import os.path as osp
import sys
import types

import torch
from torch import nn

SOMA_TARGET_MODULES = ['q', 'k', 'v', 'proj', 'fc1', 'fc2']  # extract_soma_weights.py:44 default


def _stub(name, **attrs):
    mod = types.ModuleType(name)
    mod.__dict__.update(attrs)
    sys.modules[name] = mod
    parent, _, child = name.rpartition('.')
    if parent:
        setattr(sys.modules[parent], child, mod)
    return mod


def stub_missing(kind='rein'):
    """Stub what the official ``kind`` ('soma', 'rein', or 'dgod': SoMA's detection code) imports but its
    models never use, where it is not installed; returns what was stubbed."""
    def absent(name):
        try:
            return importlib.util.find_spec(name) is None
        except (ImportError, ValueError):
            return True
    stubbed = []
    if kind in ('soma', 'dgod') and absent('peft'):  # SoMA rein/peft/sora.py:14, used as a context around sora_init (sora.py:95)
        _stub('peft'); _stub('peft.utils')
        _stub('peft.utils.integrations', gather_params_ctx=lambda *a, **k: contextlib.nullcontext())
        stubbed.append('peft.utils.integrations.gather_params_ctx (nullcontext)')
    if kind == 'soma':
        return stubbed
    if kind == 'rein' and absent('xformers'):  # Rein eva_02.py:26 (unconditional); dino_layers use try/except ImportError
        _stub('xformers'); _stub('xformers.ops')
        stubbed.append('xformers (empty module)')
    if absent('einops'):  # Rein eva_02.py:32 (EVA02 only); DGOD dino_layers/efficient_attention.py (unused)
        def unavailable(*a, **k):
            raise RuntimeError('einops stub')
        _stub('einops', rearrange=unavailable, repeat=unavailable)
        stubbed.append('einops (rearrange/repeat raise)')
    if kind == 'rein' and absent('mmpretrain'):  # Rein reins_convnext.py:1, ConvNeXt only
        _stub('mmpretrain'); _stub('mmpretrain.models')
        _stub('mmpretrain.models.backbones', ConvNeXt=type('ConvNeXt', (nn.Module,), {}))
        stubbed.append('mmpretrain.models.backbones.ConvNeXt (empty nn.Module)')
    return stubbed


def full_state(model: nn.Module):
    """nn.Module.state_dict's keys/tensors, walking modules directly so that no override applies."""
    out = {}
    for name, mod in model.named_modules(remove_duplicate=False):
        mod._save_to_state_dict(out, name + '.' if name else '', keep_vars=True)
    return out


def shapes(sd):
    return {k: list(v.shape) for k, v in sd.items() if torch.is_tensor(v)}


def main():
    p = argparse.ArgumentParser()
    p.add_argument('checkout')
    p.add_argument('config')
    p.add_argument('out')
    p.add_argument('--kind', choices=['soma', 'rein'])
    p.add_argument('--target-modules', nargs='+', default=SOMA_TARGET_MODULES)
    a = p.parse_args()
    checkout = osp.abspath(a.checkout)
    kind = a.kind or ('soma' if osp.isfile(osp.join(checkout, 'tools/extract_soma_weights.py')) else 'rein')
    config = a.config if osp.isabs(a.config) else osp.join(checkout, a.config)

    os.environ.setdefault('XFORMERS_DISABLED', '1')
    stubbed = stub_missing(kind)
    sys.path.insert(0, checkout)  # the official checkout's own modules (a scratch copy, not mmdg)
    import rein  # noqa: F401  (registers the official modules)
    assert osp.dirname(osp.abspath(rein.__file__)).startswith(checkout), rein.__file__
    from mmengine.config import Config
    from mmengine.registry import init_default_scope
    from mmseg.registry import MODELS

    cfg = Config.fromfile(config)
    init_default_scope(cfg.get('default_scope', 'mmseg'))
    # DinoVisionTransformer.__init__ (SoMA dino_v2.py:131-133, Rein dino_v2.py:130-132) calls .item() on torch.linspace(0, drop_path_rate,
    # depth) for its drop-path rates, which a meta tensor cannot answer: keep that one on the CPU.
    linspace = torch.linspace
    torch.linspace = lambda *args, **kw: linspace(*args, **{'device': 'cpu', **kw})
    try:
        with torch.device('meta'):
            model = MODELS.build(cfg.model)
    finally:
        torch.linspace = linspace

    result = {'model': shapes(full_state(model))}
    state = model.state_dict()  # what mmengine's Runner.save_checkpoint stores under "state_dict"
    if kind == 'soma':
        spec = importlib.util.spec_from_file_location(
            'official_extract_soma_weights', osp.join(checkout, 'tools/extract_soma_weights.py'))
        extract = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(extract)
        result['released'] = shapes(extract.filter_keys(state, a.target_modules))
        if any(h.get('type') == 'EMAHook' for h in cfg.get('custom_hooks', []) or []):
            from mmengine.model import ExponentialMovingAverage
            ema = ExponentialMovingAverage(model)  # deep copy of the meta model + a "steps" buffer
            result['released_ema'] = shapes(extract.filter_keys(ema.state_dict(), a.target_modules))
    else:
        result['released'] = shapes(state)
    result['about'] = dict(kind=kind, checkout=checkout, config=osp.relpath(config, checkout),
                           stubbed=stubbed, n_model=len(result['model']), n_released=len(result['released']))
    os.makedirs(osp.dirname(osp.abspath(a.out)) or '.', exist_ok=True)
    with open(a.out, 'w') as f:
        json.dump(result, f, indent=1)
    print(f"{a.out}: {len(result['model'])} model keys, {len(result['released'])} released keys"
          + (f", {len(result['released_ema'])} released_ema keys" if 'released_ema' in result else '')
          + (f"; stubbed: {stubbed}" if stubbed else ''))


if __name__ == '__main__':
    main()
