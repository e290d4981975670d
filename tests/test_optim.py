"""Optimizer tools: frozen set out of the optimizer, groups in the right place, annealed weight decay."""
import math

import pytest
import torch
from mmengine.optim import build_optim_wrapper
from mmengine.registry import init_default_scope
from torch import nn

import mmdg.engine  # noqa: F401
from mmdg.engine import ZERO_DECAY_KEYS, AnnealedWeightDecay
from mmdg.models.backbones import TimmViT

BASE_LR, BASE_WD = 1e-4, 0.05


class _Segmentor(nn.Module):
    def __init__(self, adapter=None):
        super().__init__()
        self.backbone = TimmViT(arch='dinov2-s', img_size=56, patch_size=14, out_indices=(0, 1, 2, 3),
                                frozen_blocks=2, adapter=adapter, model_kwargs=dict(embed_dim=64, depth=4, num_heads=2))
        self.decode_head = nn.Sequential(nn.Linear(64, 64), nn.LayerNorm(64))
        self.decode_head.query_embed = nn.Parameter(torch.zeros(5, 64))


def _build(model):
    init_default_scope('mmdg')
    return build_optim_wrapper(model, dict(
        type='OptimWrapper', constructor='DGOptimWrapperConstructor',
        optimizer=dict(type='AdamW', lr=BASE_LR, weight_decay=BASE_WD),
        paramwise_cfg=dict(custom_keys={'backbone': dict(lr_mult=0.5)}, zero_decay_keys=ZERO_DECAY_KEYS)))


def _groups_by_name(model, optim):
    names = {id(p): n for n, p in model.named_parameters()}
    out = {}
    for g in optim.param_groups:
        for p in g['params']:
            assert names[id(p)] not in out, f'{names[id(p)]} is in two groups'
            out[names[id(p)]] = g
    return out


def test_groups_frozen_blocks_and_zero_decay():
    model = _Segmentor()
    groups = _groups_by_name(model, _build(model).optimizer)
    for name in groups:  # the frozen prefix never reaches the optimizer
        assert not name.startswith(('backbone.vit.blocks.0.', 'backbone.vit.blocks.1.', 'backbone.vit.patch_embed',
                                    'backbone.vit.pos_embed', 'backbone.vit.cls_token')), name
    assert set(groups) == {n for n, p in model.named_parameters() if p.requires_grad}
    g = groups['backbone.vit.blocks.2.attn.qkv.weight']
    assert g['lr'] == pytest.approx(0.5 * BASE_LR) and g['weight_decay'] == pytest.approx(BASE_WD)
    g = groups['backbone.vit.blocks.2.norm1.weight']  # backbone lr AND zero decay
    assert g['lr'] == pytest.approx(0.5 * BASE_LR) and g['weight_decay'] == 0
    assert groups['backbone.vit.blocks.3.ls1.gamma']['weight_decay'] == 0
    g = groups['decode_head.0.weight']
    assert g['lr'] == pytest.approx(BASE_LR) and g['weight_decay'] == pytest.approx(BASE_WD)
    assert groups['decode_head.query_embed']['weight_decay'] == 0
    assert groups['decode_head.1.weight']['weight_decay'] == 0


def test_shared_adapter_parameters_enter_once():
    model = _Segmentor(adapter=dict(type='ALoRE', blocks=(2, 4)))
    groups = _groups_by_name(model, _build(model).optimizer)  # raises on a duplicate
    assert sum('kron_S' in n for n in groups) == 1
    assert all('lora' not in n and 'base.weight' not in n for n in groups)


def test_annealed_weight_decay_follows_the_cosine():
    params = [nn.Parameter(torch.zeros(1)) for _ in range(3)]
    optim = torch.optim.AdamW([dict(params=[params[0]], weight_decay=0.05), dict(params=[params[1]], weight_decay=0.01),
                               dict(params=[params[2]], weight_decay=0.0)], lr=1e-3)
    T, eta_min = 20, 1e-5
    sched = AnnealedWeightDecay(optim, eta_min=eta_min, begin=0, end=T)
    for t in range(T):
        for g, base in zip(optim.param_groups, (0.05, 0.01, 0.0)):
            want = 0.0 if base == 0 else eta_min + (base - eta_min) * (1 + math.cos(math.pi * t / T)) / 2
            assert g['weight_decay'] == pytest.approx(want, rel=1e-6, abs=1e-12), (t, base)
        optim.step()
        sched.step()


def test_annealed_weight_decay_official_mode_lifts_zero_groups():
    """keep_zero=False is the official scheduler: a zero-decay group follows the same cosine from 0
    towards eta_min (it ends near eta_min, where keep_zero=True holds it at 0)."""
    params = [nn.Parameter(torch.zeros(1)) for _ in range(2)]
    optim = torch.optim.AdamW([dict(params=[params[0]], weight_decay=0.05),
                               dict(params=[params[1]], weight_decay=0.0)], lr=1e-3)
    T, eta_min = 20, 1e-5
    sched = AnnealedWeightDecay(optim, eta_min=eta_min, begin=0, end=T, keep_zero=False)
    for t in range(T):
        for g, base in zip(optim.param_groups, (0.05, 0.0)):
            want = eta_min + (base - eta_min) * (1 + math.cos(math.pi * t / T)) / 2
            assert g['weight_decay'] == pytest.approx(want, rel=1e-6, abs=1e-12), (t, base)
        optim.step()
        sched.step()
    assert optim.param_groups[1]['weight_decay'] > 0.9 * eta_min
