"""TimmViT: feature pyramid, pre-trained weights before adapters, freezing, init_weights."""
import pytest
import torch
import torch.nn.functional as F

from conftest import tiny_vit
from mmdg.adapters import AdapterLinear
from mmdg.models.backbones import TimmViT
from mmdg.models.backbones.vit_weights import timm_to_official_dinov2

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
