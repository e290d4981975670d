"""DINOv3 backbones (timm's Eva: patch 16, RoPE, 4 register tokens, layer scale; the 7B with SwiGLU)."""
import os.path as osp
import re

import pytest
import torch

from conftest import REPO, tiny_vit
from mmdg.models.backbones import TimmViT
from mmdg.convert.vit import ARCHS, CheckpointError, timm_to_official_dinov3

SMALL = dict(embed_dim=64, depth=4, num_heads=2)


@pytest.mark.parametrize('arch', ['dinov3-s', 'dinov3-s-qkvb', 'dinov3-7b'])
def test_four_maps_at_any_input_size_without_register_tokens(arch):
    """RoPE needs no position grid: crops, other sizes and non-square inputs give maps at strides 4-32 of
    the patch tokens alone (the class and 4 register tokens dropped)."""
    bb = TimmViT(arch=arch, img_size=64, patch_size=16, out_indices=(0, 1, 2, 3), model_kwargs=SMALL).eval()
    assert bb.vit.num_prefix_tokens == 5
    for h, w in [(64, 64), (64, 128), (112, 48)]:
        with torch.no_grad():
            feats = bb(torch.randn(1, 3, h, w))
        assert [tuple(f.shape) for f in feats] == [(1, 64, -(-h // s), -(-w // s)) for s in (4, 8, 16, 32)]
    raw = TimmViT(arch=arch, img_size=64, patch_size=16, out_indices=(3,), out_strides=None, model_kwargs=SMALL)
    assert raw(torch.randn(1, 3, 48, 80))[0].shape == (1, 64, 3, 5)  # 15 patch tokens, no prefix


@pytest.mark.parametrize('kind', ['dinov3', 'dinov3-qkvb', 'dinov3-7b'])
def test_weights_from_metas_layout_and_timms(kind, tmp_path):
    """Meta's original files (storage_tokens, ls1/ls2.gamma, fused qkv bias, the 7B's w1/w2/w3) and timm's
    layout load into the backbone exactly; a file that does not fit names the keys."""
    ref = tiny_vit(kind)
    arch = {'dinov3': 'dinov3-s', 'dinov3-qkvb': 'dinov3-s-qkvb', 'dinov3-7b': 'dinov3-7b'}[kind]
    meta = timm_to_official_dinov3(ref.state_dict(), ref)
    assert 'storage_tokens' in meta and 'blocks.0.ls1.gamma' in meta
    assert ('blocks.0.mlp.w1.weight' in meta) == (kind == 'dinov3-7b')
    for layout, sd in (('meta', meta), ('timm', ref.state_dict())):
        path = tmp_path / f'{layout}.pth'
        torch.save(sd, path)
        bb = TimmViT(arch=arch, img_size=64, patch_size=16, out_indices=(3,), out_strides=None, pretrained=str(path),
                     model_kwargs=dict(SMALL, init_values=1.0))
        for k, v in ref.state_dict().items():
            assert torch.equal(bb.vit.state_dict()[k], v), (layout, k)
    del meta['blocks.1.attn.proj.weight']
    meta['blocks.0.norm1.weight'] = torch.ones(32)
    torch.save(meta, tmp_path / 'bad.pth')
    with pytest.raises(CheckpointError, match=r'missing \(1\): blocks\.1\.attn\.proj\.weight(.|\n)*mis-shaped'):
        TimmViT(arch=arch, img_size=64, patch_size=16, out_indices=(3,), out_strides=None,
                pretrained=str(tmp_path / 'bad.pth'), model_kwargs=SMALL)


def test_full_size_parameter_counts_in_the_model_zoo():
    """Every DINOv3 size built at full size on the meta device; docs/model_zoo.md lists its parameter count."""
    zoo = open(osp.join(REPO, 'docs', 'model_zoo.md')).read()
    for arch in [a for a in ARCHS if a.startswith('dinov3') and not a.endswith('-qkvb')]:
        with torch.device('meta'):
            bb = TimmViT(arch=arch, img_size=512, patch_size=16, out_indices=(-1,), out_strides=None)
        n = sum(p.numel() for p in bb.vit.parameters())
        row = re.search(rf'\| `{re.escape(arch)}` \|[^\n]*', zoo)
        assert row and f'{n:,}' in row.group(0), (arch, n)
