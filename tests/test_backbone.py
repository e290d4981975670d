"""TimmViT: feature pyramid, pre-trained weights before adapters, freezing, init_weights."""
import os.path as osp

import pytest
import torch
import torch.nn.functional as F

from conftest import tiny_vit
from mmdg.adapters import AdapterLinear
from mmdg.models.backbones import TimmViT
from mmdg.convert.vit import timm_to_official_dinov2

SMALL = dict(embed_dim=64, depth=4, num_heads=2)


def _official_file(tmp_path):
    ref = tiny_vit('dinov2', **SMALL)
    path = tmp_path / 'official.pth'
    torch.save(timm_to_official_dinov2(ref.state_dict(), ref), path)
    return ref, str(path)


@pytest.mark.parametrize('arch', ['dinov2-s', 'dinov2-s-reg4', 'eva02-s', 'eva02-b'])
def test_four_maps_at_strides_4_8_16_32_for_non_square_input(arch):
    bb = TimmViT(arch=arch, img_size=(64, 96), patch_size=16, out_indices=(0, 1, 2, 3), model_kwargs=SMALL)
    feats = bb(torch.randn(2, 3, 64, 128))
    assert [tuple(f.shape[-2:]) for f in feats] == [(16, 32), (8, 16), (4, 8), (2, 4)]
    assert all(f.shape[:2] == (2, 64) for f in feats)


def test_sora_decomposes_the_pretrained_weights_not_random_ones(tmp_path):
    ref, path = _official_file(tmp_path)
    bb = TimmViT(arch='dinov2-s', img_size=56, patch_size=14, out_indices=(0, 1, 2, 3), pretrained=path,
                 adapter=dict(type='SoRA', r=4, alpha=4, blocks=(1, 4)), model_kwargs=SMALL)
    layer = bb.vit.blocks[2].attn.qkv
    assert isinstance(layer, AdapterLinear)
    torch.testing.assert_close(layer.merged_weight(), ref.blocks[2].attn.qkv.weight, rtol=1e-5, atol=1e-6)


def test_init_weights_keeps_pretrained_and_adapters(tmp_path):
    ref, path = _official_file(tmp_path)
    bb = TimmViT(arch='dinov2-s', img_size=56, patch_size=14, out_indices=(0, 1, 2, 3), pretrained=path,
                 adapter=dict(type='LoRA', r=2), model_kwargs=SMALL)
    before = {k: v.clone() for k, v in bb.state_dict().items()}
    bb.init_weights()  # what mmengine's Runner calls before training
    for k, v in bb.state_dict().items():
        assert torch.equal(v, before[k]), f'init_weights changed {k}'


def test_frozen_blocks_and_frozen_backbone():
    bb = TimmViT(arch='dinov2-s', img_size=56, patch_size=14, out_indices=(0, 1, 2, 3), frozen_blocks=2,
                 model_kwargs=SMALL)
    trainable = {n for n, p in bb.named_parameters() if p.requires_grad}
    assert not any(n.startswith(('vit.blocks.0.', 'vit.blocks.1.', 'vit.patch_embed', 'vit.pos_embed',
                                 'vit.cls_token')) for n in trainable)
    assert any(n.startswith('vit.blocks.2.') for n in trainable)
    frozen = TimmViT(arch='dinov2-s', img_size=56, patch_size=14, out_indices=(0, 1, 2, 3), freeze=True,
                     model_kwargs=SMALL)
    assert not any(p.requires_grad for p in frozen.parameters())


def test_bad_arguments():
    with pytest.raises(KeyError, match='unknown ViT arch'):
        TimmViT(arch='dinov3-z')
    with pytest.raises(ValueError, match='out_indices'):
        TimmViT(arch='dinov2-s', img_size=56, out_indices=(0, 1, 2, 9), model_kwargs=SMALL)


def test_patch_resample_reaches_the_weight_loader(tmp_path):
    ref, path = _official_file(tmp_path)  # patch 14
    kw = dict(arch='dinov2-s', img_size=64, patch_size=16, out_indices=(0, 1, 2, 3), model_kwargs=SMALL)
    assert TimmViT(**kw).patch_resample == 'pinv'  # the default: timm's resampling
    bb = TimmViT(pretrained=path, patch_resample='bicubic', **kw)
    want = F.interpolate(ref.patch_embed.proj.weight.detach(), size=(16, 16), mode='bicubic', align_corners=False)
    assert bb.patch_resample == 'bicubic'
    assert torch.equal(bb.vit.patch_embed.proj.weight, want)
    assert not torch.equal(TimmViT(pretrained=path, **kw).vit.patch_embed.proj.weight, want)


OFFICIAL_POS = osp.join(osp.dirname(osp.abspath(__file__)), 'official', 'dinov2_interpolate_pos_encoding.pt')


def test_dinov2_position_resampling_equals_the_official_code():
    """``pos_resample='dinov2'`` gives what the official DINOv2 backbone's ``interpolate_pos_encoding`` gives
    (its outputs stored from the official code, run outside this repository: tests/official/README.md), at
    square, non-square, larger and smaller sizes; timm's resampling differs at each of those sizes."""
    from timm.layers import resample_abs_pos_embed
    from mmdg.convert.vit import resample_pos_dinov2
    ref = torch.load(OFFICIAL_POS, weights_only=True)
    pos, p = ref['pos_embed'], ref['patch_size']
    for size, expected in ref['outputs'].items():
        h, w = (int(s) // p for s in size.split('x'))
        ours = resample_pos_dinov2(pos, (h, w), (8, 8), num_prefix=1)
        assert ours.shape == expected.shape and torch.allclose(ours, expected, atol=1e-6), size
        theirs_timm = resample_abs_pos_embed(pos, new_size=(h, w), old_size=(8, 8), num_prefix_tokens=1)
        assert (h, w) == (8, 8) or not torch.allclose(theirs_timm, expected, atol=1e-3), size


def test_pos_resample_switch_in_the_backbone():
    """The switch reaches the ViT's forward: the same weights give other tokens at a non-native size and the
    same at the native one; an EVA (no learned grid to resample that way) refuses it."""
    torch.manual_seed(0)
    kw = dict(arch='vit_small_patch14_dinov2', img_size=64, patch_size=16, out_indices=(0, 1), out_strides=None,
              model_kwargs=dict(depth=2, embed_dim=32, num_heads=2))
    a, b = TimmViT(pos_resample='timm', **kw).eval(), TimmViT(pos_resample='dinov2', **kw).eval()
    b.load_state_dict(a.state_dict())
    with torch.no_grad():
        native = torch.randn(1, 3, 64, 64)
        assert torch.equal(a(native)[1], b(native)[1])
        other = torch.randn(1, 3, 48, 96)
        fa, fb = a(other)[1], b(other)[1]
        assert fa.shape == fb.shape == (1, 32, 3, 6) and not torch.allclose(fa, fb, atol=1e-4)
    with pytest.raises(ValueError, match="pos_resample='dinov2' is DINOv2's rule"):
        TimmViT(arch='eva02_small_patch14_224', img_size=64, patch_size=16, out_indices=(0,), out_strides=None,
                pos_resample='dinov2', model_kwargs=dict(depth=1, embed_dim=32, num_heads=2))
    with pytest.raises(ValueError, match='pos_resample='):
        TimmViT(pos_resample='nearest', **kw)
