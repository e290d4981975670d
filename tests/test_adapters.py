"""The adapter library on bare timm models: no-op init, exact merge, SVD semantics, gradients, errors."""
import copy

import pytest
import timm
import torch

from conftest import tiny_vit
from mmdg.adapters import (ADAPTERS, AdapterLinear, aux_losses, count_parameters, inject_adapters,
                           merge_adapters, trainable_state_dict)

KINDS = ['dinov2', 'eva02-s', 'eva02-b', 'dinov3', 'dinov3-qkvb', 'dinov3-7b']
METHODS = [n for n, c in ADAPTERS.items() if c.target_kind == 'linear']  # Rein (block-level): tests/test_rein.py


def _perturb(model, std=0.05):
    with torch.no_grad():
        for p in model.parameters():
            if p.requires_grad:
                p.add_(torch.randn_like(p) * std)


@pytest.mark.parametrize('kind', KINDS)
@pytest.mark.parametrize('method', METHODS)
def test_noop_at_init_and_exact_merge(kind, method):
    model = tiny_vit(kind).eval()
    x = torch.randn(2, 3, 56, 56)
    with torch.no_grad():
        y0 = model(x)
        inject_adapters(model, dict(type=method))
        assert any(isinstance(m, AdapterLinear) for m in model.modules())
        y1 = model(x)
        torch.testing.assert_close(y1, y0, rtol=1e-5, atol=1e-5)
        _perturb(model)
        y2 = model(x)
        assert (y2 - y0).abs().max() > 1e-3, 'perturbing the adapter parameters must change the output'
        merge_adapters(model)
        assert not any(isinstance(m, AdapterLinear) for m in model.modules())
        assert all(type(m) is torch.nn.Linear for n, m in model.named_modules() if n.endswith(('qkv', 'fc2')))
        y3 = model(x)
    rel = ((y3 - y2).norm() / y2.norm()).item()
    assert rel <= 1e-5, f'{method} on {kind}: merged output differs by {rel:.2e}'


@pytest.mark.parametrize('method,components', [('SoRA', 'minor'), ('PiSSA', 'principal')])
def test_svd_adapters_hold_the_right_components(method, components):
    model = tiny_vit('dinov2')
    pre = {n: p.detach().clone() for n, p in model.named_parameters()}
    r = 4
    inject_adapters(model, dict(type=method, r=r, alpha=8, targets=('qkv', 'fc1')))
    layer = model.blocks[1].attn.qkv
    assert layer.num_slices == 3  # q, k, v: three matrices, three decompositions
    w = pre['blocks.1.attn.qkv.weight'].double()
    for i, w_i in enumerate(w.chunk(3, dim=0)):
        u, s, vh = torch.linalg.svd(w_i)  # independent float64 SVD
        keep = slice(-r, None) if components == 'minor' else slice(0, r)
        part = u[:, keep] @ torch.diag(s[keep]) @ vh[keep]
        ba = layer.scale * (layer.lora_B[i].double() @ layer.lora_A[i].double())
        torch.testing.assert_close(ba, part, rtol=1e-4, atol=1e-5)
    # the residual plus the adapter is the pre-trained weight again
    torch.testing.assert_close(layer.merged_weight(), pre['blocks.1.attn.qkv.weight'], rtol=1e-5, atol=1e-6)
    fc1 = model.blocks[0].mlp.fc1
    s_fc1 = torch.linalg.svdvals(pre['blocks.0.mlp.fc1.weight'].double())
    got = torch.linalg.svdvals(fc1.scale * (fc1.lora_B[0] @ fc1.lora_A[0]).double())[:r]
    want = s_fc1[-r:] if components == 'minor' else s_fc1[:r]
    torch.testing.assert_close(got.sort().values, want.sort().values, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize('method', METHODS)
def test_only_adapter_parameters_get_gradients(method):
    model = tiny_vit('dinov2')
    inject_adapters(model, dict(type=method, blocks=(1, 3)))
    model(torch.randn(2, 3, 56, 56)).pow(2).mean().backward()
    recipe_bias = ADAPTERS[method].train_bias
    for name, p in model.named_parameters():
        in_adapter = any(k in name for k in ('lora_', 'expert_', 'kron_S', 'v_left', 'v_right', 'diag', 'w_down',
                                             'w_up', 'bases_', 'coef_Q'))
        adapted_bias = name.endswith('base.bias') and recipe_bias
        if in_adapter or adapted_bias:
            assert p.requires_grad, name
        else:
            assert not p.requires_grad and p.grad is None, f'{name} must stay frozen'
    from_adapters = {id(p) for m in model.modules() if isinstance(m, AdapterLinear) for p in m.trainable_parameters()}
    assert from_adapters == {id(p) for n, p in model.named_parameters() if p.requires_grad and 'base.' not in n} | \
        {id(m.base.bias) for m in model.modules() if isinstance(m, AdapterLinear) and recipe_bias}
    for blk in (0, 3):  # outside the block range nothing is adapted
        assert not any(isinstance(m, AdapterLinear) for m in model.blocks[blk].modules())


def test_parameter_counts_dinov2_large_recipe():
    """The SoRA paper: DINOv2-L, blocks 8..23, r = 16: 4,718,592 A/B + 147,456 biases."""
    with torch.device('meta'):
        vit = timm.create_model('vit_large_patch14_dinov2', pretrained=False, num_classes=0, patch_size=16,
                                img_size=512)
        inject_adapters(vit, dict(type='SoRA', blocks=(8, 24)))
    ab = sum(p.numel() for n, p in vit.named_parameters() if 'lora_' in n)
    bias = sum(p.numel() for n, p in vit.named_parameters() if p.requires_grad and n.endswith('.bias'))
    assert (ab, bias, count_parameters(vit)) == (4_718_592, 147_456, 4_866_048)


@pytest.mark.parametrize('arch,targets,expected', [
    # the ALoRE paper: ViT-B/16, n = 4, r = 4, qkv and fc1 of 12 blocks: 147,456 + 64 shared
    ('vit_base_patch16_224', None, 147_456 + 64),
])
def test_parameter_counts_alore_budget(arch, targets, expected):
    with torch.device('meta'):
        vit = timm.create_model(arch, pretrained=False, num_classes=0)
        inject_adapters(vit, dict(type='ALoRE'))
    assert count_parameters(vit) == expected


def test_parameter_counts_hta_budget():
    """the HTA paper: q, k, v, o of ViT-B/16's 12 blocks: 12 * 4 * 3840 = 184,320."""
    with torch.device('meta'):
        vit = timm.create_model('vit_base_patch16_224', pretrained=False, num_classes=0)
        inject_adapters(vit, dict(type='HTA'))
    assert count_parameters(vit) == 184_320


def test_clora_shares_bases_and_sade_reaches_zero_only_when_orthogonal():
    model = tiny_vit('dinov2')
    inject_adapters(model, dict(type='CLoRA', r=4, num_bases=3))
    qkv, proj = model.blocks[0].attn.qkv, model.blocks[2].attn.proj
    assert qkv.bases_D is proj.bases_D  # same 64x64 slice shape: one shared base space
    assert not aux_losses(model)['loss_sade'].item()  # Q = 0 at init: no component, no overlap
    _perturb(model, 0.5)
    loss = aux_losses(model)['loss_sade']
    assert loss.item() > 0 and loss.requires_grad
    loss.backward()
    assert qkv.coef_Q.grad is not None and qkv.coef_Q.grad.abs().sum() > 0


def test_sade_matches_dense_definition():
    """The r x r Gram computation equals the definition on dense matrices."""
    model = tiny_vit('dinov2', depth=1)
    inject_adapters(model, dict(type='CLoRA', r=3, num_bases=3, sade_weight=1.0, targets=('fc2',)))
    layer = model.blocks[0].mlp.fc2
    _perturb(model, 0.5)
    with torch.no_grad():
        m = [layer.bases_D[h] @ layer.coef_Q[0, h] @ layer.bases_U[h] for h in range(3)]
        floor = [layer.sade_eps * layer.bases_D[h].pow(2).sum() * layer.bases_U[h].pow(2).sum() / 9 for h in range(3)]
        want = sum((m[h].T @ m[g]).pow(2).sum() / ((m[h].pow(2).sum() + floor[h]) * (m[g].pow(2).sum() + floor[g]))
                   for h in range(3) for g in range(h + 1, 3))
        torch.testing.assert_close(layer.aux_loss(), want, rtol=1e-4, atol=1e-7)


def test_adapter_only_state_dict_rebuilds_the_trained_model():
    torch.manual_seed(1)
    pretrained = tiny_vit('dinov2').state_dict()

    def fresh():
        m = tiny_vit('dinov2')
        m.load_state_dict(pretrained)
        return inject_adapters(m, dict(type='SoRA', r=4, alpha=4))

    trained = fresh()
    _perturb(trained)
    small = trainable_state_dict(trained)
    assert all('lora_' in k or k.endswith('bias') for k in small)
    assert sum(v.numel() for v in small.values()) < 0.25 * sum(p.numel() for p in trained.parameters())
    rebuilt = fresh()  # residual recomputed from the pre-trained weights, then the trained A, B, biases
    missing, unexpected = rebuilt.load_state_dict(small, strict=False)
    assert not unexpected
    x = torch.randn(1, 3, 56, 56)
    with torch.no_grad():
        torch.testing.assert_close(rebuilt.eval()(x), trained.eval()(x), rtol=0, atol=0)
    # a full round trip reproduces it too, without redoing the SVD on the trained weights
    clone = fresh()
    clone.load_state_dict(copy.deepcopy(trained.state_dict()))
    with torch.no_grad():
        torch.testing.assert_close(clone(x), trained(x), rtol=0, atol=0)


def test_errors_are_specific():
    model = tiny_vit('dinov2')
    with pytest.raises(KeyError, match='known: LoRA, SoRA, PiSSA, ALoRE, HTA, CLoRA'):
        inject_adapters(model, dict(type='DoRA'))
    with pytest.raises(ValueError, match=r"\['qvk'\] matched no nn.Linear.*attn.qkv"):
        inject_adapters(tiny_vit('dinov2'), dict(type='LoRA', targets=('qvk', 'fc1')))
    with pytest.raises(ValueError, match=r'block range \[2, 9\) is outside the model, which has 4 blocks'):
        inject_adapters(tiny_vit('dinov2'), dict(type='LoRA', blocks=(2, 9)))
    with pytest.raises(ValueError, match=r'rank r=65 is invalid .* 64x64 matrices allow 1 <= r <= 64'):
        inject_adapters(tiny_vit('dinov2'), dict(type='SoRA', r=65))
    with pytest.raises(KeyError, match="does not take \\['rank'\\]"):
        inject_adapters(tiny_vit('dinov2'), dict(type='LoRA', rank=4))


def test_every_method_has_working_defaults_on_both_namings():
    for kind in ('dinov2', 'eva02-b'):
        for method in METHODS:
            model = inject_adapters(tiny_vit(kind), dict(type=method))
            assert count_parameters(model) > 0
