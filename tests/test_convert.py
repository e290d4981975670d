"""Official DINOv2 / EVA02 checkpoints -> mmdg: same features as timm's model with the same weights."""
import re

import pytest
import torch
import torch.nn.functional as F
from timm.models.vision_transformer import checkpoint_filter_fn

from conftest import invoke_tool, tiny_vit
from mmdg.convert.vit import convert_to_timm, load_vit_weights, timm_to_official_dinov2
from mmdg.utils.checkpoint import CheckpointError

SMALL = dict(embed_dim=64, depth=4, num_heads=2)


def _backbone(arch, path, **kw):
    from mmdg.models.backbones import TimmViT
    return TimmViT(arch=arch, img_size=kw.pop('img_size', 56), patch_size=kw.pop('patch_size', 14),
                   out_indices=(0, 1, 2, 3), out_strides=None, pretrained=path, model_kwargs=dict(SMALL, **kw.pop('model_kwargs', {})), **kw)


def _features(model, x):
    return model.forward_intermediates(x, indices=[0, 1, 2, 3], output_fmt='NCHW', intermediates_only=True)


def _convert_cli(src, dst, arch, *extra):
    return invoke_tool('convert/vit.py', src, dst, '--arch', arch, *extra)


@pytest.mark.parametrize('kind,arch', [('dinov2', 'dinov2-s'), ('dinov2-reg4', 'dinov2-s-reg4'),
                                       ('dinov2-g', 'dinov2-g')])
def test_official_dinov2_layout_gives_identical_features(tmp_path, kind, arch):
    dims = dict(SMALL, embed_dim=96) if kind == 'dinov2-g' else SMALL  # SwiGLU hidden size must be even
    ref = tiny_vit(kind, **dims).eval()
    with torch.no_grad():
        for p in ref.parameters():  # break the init symmetry (zero biases, unit layer scales)
            p.add_(torch.randn_like(p) * 0.02)
    official = timm_to_official_dinov2(ref.state_dict(), ref)
    assert 'mask_token' in official and 'reg_token' not in official
    if kind == 'dinov2-reg4':
        assert 'register_tokens' in official and official['pos_embed'].shape[1] == 1 + 16
    if kind == 'dinov2-g':
        assert any('mlp.w12' in k for k in official) and any('mlp.w3' in k for k in official)
    src = tmp_path / 'official.pth'
    torch.save(official, src)
    backbone = _backbone(arch, str(src), model_kwargs=dims).eval()
    x = torch.randn(2, 3, 56, 56)
    with torch.no_grad():
        for a, b in zip(backbone(x), _features(ref, x)):
            torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)


def test_patch16_resampling_matches_timm(tmp_path):
    ref = tiny_vit('dinov2', **SMALL)
    src = tmp_path / 'official.pth'
    torch.save(timm_to_official_dinov2(ref.state_dict(), ref), src)
    backbone = _backbone('dinov2-s', str(src), patch_size=16).eval()
    assert backbone.vit.patch_embed.proj.weight.shape[-1] == 16
    peer = tiny_vit('dinov2', patch_size=16, img_size=56, **SMALL)
    peer.load_state_dict(checkpoint_filter_fn(torch.load(src), peer))
    x = torch.randn(1, 3, 64, 96)  # non-square, other size than the position grid
    with torch.no_grad():
        for a, b in zip(backbone(x), _features(peer.eval(), x)):
            assert a.shape[-2:] == (4, 6)
            torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)


def _timm_eva_to_official(sd):
    """EVA02 MIM checkpoints as released: SwiGLU w1/w2/w3, ffn_ln, rope buffers, mask token, lm head."""
    out = {}
    for k, v in sd.items():
        k = k.replace('mlp.fc1_g', 'mlp.w1').replace('mlp.fc1_x', 'mlp.w2').replace('mlp.fc2', 'mlp.w3')
        k = k.replace('mlp.norm', 'mlp.ffn_ln')
        out[k] = v
    out['mask_token'] = torch.zeros(1, 1, sd['cls_token'].shape[-1])
    out['lm_head.weight'] = torch.zeros(8, sd['cls_token'].shape[-1])
    out['rope.freqs_cos'] = torch.zeros(16, 16)
    return dict(module=out)


@pytest.mark.parametrize('kind,arch', [('eva02-s', 'eva02-s'), ('eva02-b', 'eva02-b')])
@pytest.mark.parametrize('layout', ['official', 'timm'])
def test_eva02_layouts_give_identical_features(tmp_path, kind, arch, layout):
    ref = tiny_vit(kind, **SMALL).eval()
    with torch.no_grad():
        for p in ref.parameters():
            p.add_(torch.randn_like(p) * 0.02)
    sd = {k: v for k, v in ref.state_dict().items() if 'rope' not in k}
    src = tmp_path / 'eva.pt'
    torch.save(_timm_eva_to_official(sd) if layout == 'official' else sd, src)
    backbone = _backbone(arch, str(src)).eval()
    x = torch.randn(2, 3, 56, 56)
    with torch.no_grad():
        for a, b in zip(backbone(x), _features(ref, x)):
            torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)


def test_convert_cli_roundtrip(tmp_path):
    """The CLI on a real architecture name (ViT-S/14 DINOv2 at full size, random weights)."""
    import timm
    ref = timm.create_model('vit_small_patch14_dinov2', pretrained=False, num_classes=0, img_size=518,
                            dynamic_img_size=True).eval()
    src, dst = tmp_path / 'dinov2_vits14_pretrain.pth', tmp_path / 'out' / 'dinov2_s.pth'
    torch.save(timm_to_official_dinov2(ref.state_dict(), ref), src)
    res = _convert_cli(src, dst, 'dinov2-s', '--img-size', '224', '--patch-size', '14')
    assert res.returncode == 0, res.stderr
    assert 'wrote' in res.stdout and dst.exists()
    from mmdg.models.backbones import TimmViT
    bb = TimmViT(arch='dinov2-s', img_size=224, patch_size=14, out_indices=(2, 5, 8, 11), out_strides=None,
                 pretrained=str(dst)).eval()
    x = torch.randn(1, 3, 224, 224)
    with torch.no_grad():
        want = ref.forward_intermediates(x, indices=[2, 5, 8, 11], output_fmt='NCHW', intermediates_only=True)
        for a, b in zip(bb(x), want):
            torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)
    assert _convert_cli(src, src, 'dinov2-s').returncode != 0  # never overwrites its input


def test_checkpoint_that_does_not_fit_lists_the_keys(tmp_path):
    small = tiny_vit('dinov2', **SMALL)
    src = tmp_path / 'small.pth'
    sd = timm_to_official_dinov2(small.state_dict(), small)
    sd.pop('blocks.0.norm1.weight')
    sd['blocks.0.extra.weight'] = torch.zeros(1)
    torch.save(sd, src)
    wider = tiny_vit('dinov2', embed_dim=96, depth=4, num_heads=2)
    with pytest.raises(CheckpointError) as err:
        load_vit_weights(wider, str(src))
    msg = str(err.value)
    assert re.search(r'missing \(1\): blocks\.0\.norm1\.weight', msg)
    assert re.search(r'unexpected \(1\): blocks\.0\.extra\.weight', msg)
    assert 'mis-shaped' in msg and 'blocks.0.attn.qkv.weight: checkpoint (192, 64) vs model (288, 96)' in msg


def _official_small(tmp_path, kind='dinov2', img_size=112):
    ref = tiny_vit(kind, img_size=img_size, **SMALL)  # patch 14: an 8x8 grid by default
    with torch.no_grad():
        for p in ref.parameters():
            p.add_(torch.randn_like(p) * 0.02)
    official = timm_to_official_dinov2(ref.state_dict(), ref)
    src = tmp_path / 'official.pth'
    torch.save(official, src)
    return official, str(src)


def _bicubic(t, size):
    return F.interpolate(t.float(), size=size, mode='bicubic', align_corners=False)


def test_bicubic_patch_resample_is_the_official_conversion(tmp_path):
    """'bicubic': kernel and position grid by plain F.interpolate (the official SoRA conversion), cls
    position kept; 'pinv' stays timm's; the two differ."""
    official, src = _official_small(tmp_path)  # patch 14, 8x8 grid
    bb = _backbone('dinov2-s', src, patch_size=16, img_size=96, patch_resample='bicubic')  # 6x6 grid
    kernel = _bicubic(official['patch_embed.proj.weight'], (16, 16))
    grid = official['pos_embed'][:, 1:].reshape(1, 8, 8, -1).permute(0, 3, 1, 2)
    grid = _bicubic(grid, (6, 6)).permute(0, 2, 3, 1).reshape(1, 36, -1)
    pos = torch.cat([official['pos_embed'][:, :1], grid], dim=1)
    assert torch.equal(bb.vit.patch_embed.proj.weight, kernel)
    assert torch.equal(bb.vit.pos_embed, pos)
    assert torch.equal(bb.vit.blocks[1].attn.qkv.weight, official['blocks.1.attn.qkv.weight'])

    pinv = _backbone('dinov2-s', src, patch_size=16, img_size=96)  # the default
    peer = tiny_vit('dinov2', patch_size=16, img_size=96, **SMALL)
    peer.load_state_dict(checkpoint_filter_fn(torch.load(src), peer))
    assert torch.equal(pinv.vit.patch_embed.proj.weight, peer.patch_embed.proj.weight)
    assert torch.equal(pinv.vit.pos_embed, peer.pos_embed)
    assert not torch.allclose(pinv.vit.patch_embed.proj.weight, kernel, rtol=0.05, atol=0)
    assert not torch.allclose(pinv.vit.pos_embed, pos, rtol=0.05, atol=0)


def test_bicubic_patch_resample_with_registers(tmp_path):
    """DINOv2 with registers: timm keeps no cls position, so the official one joins the cls token."""
    official, src = _official_small(tmp_path, 'dinov2-reg4')
    official['pos_embed'][:, :1] = torch.randn_like(official['pos_embed'][:, :1])  # a real cls position
    torch.save(official, src)
    bb = _backbone('dinov2-s-reg4', src, patch_size=16, img_size=96, patch_resample='bicubic')
    grid = official['pos_embed'][:, 1:].reshape(1, 8, 8, -1).permute(0, 3, 1, 2)
    grid = _bicubic(grid, (6, 6)).permute(0, 2, 3, 1).reshape(1, 36, -1)
    assert torch.equal(bb.vit.pos_embed, grid)
    torch.testing.assert_close(bb.vit.cls_token, official['cls_token'] + official['pos_embed'][:, :1])
    assert torch.equal(bb.vit.reg_token, official['register_tokens'])


def test_patch_resample_is_validated_and_kept_out_of_same_size_files(tmp_path):
    official, src = _official_small(tmp_path, img_size=56)  # the model's own 4x4 grid and kernel 14
    with pytest.raises(ValueError, match='patch_resample'):
        _backbone('dinov2-s', src, patch_resample='nearest')
    # a file that already has the model's kernel and grid loads unchanged either way
    same = [_backbone('dinov2-s', src, patch_resample=m).vit.state_dict() for m in ('pinv', 'bicubic')]
    for k, v in same[0].items():
        assert torch.equal(v, same[1][k]), k
    assert torch.equal(same[1]['pos_embed'], official['pos_embed'])


def test_convert_cli_patch_resample(tmp_path):
    """tools/convert/vit.py --patch-resample bicubic on a full-size DINOv2-S/14 (37x37 grid) -> 16 / 6x6."""
    import timm
    ref = timm.create_model('vit_small_patch14_dinov2', pretrained=False, num_classes=0, img_size=518)
    official = timm_to_official_dinov2(ref.state_dict(), ref)
    src = tmp_path / 'dinov2_vits14_pretrain.pth'
    torch.save(official, src)
    dst = tmp_path / 'bicubic.pth'
    res = _convert_cli(src, dst, 'dinov2-s', '--img-size', '96', '--patch-size', '16', '--patch-resample', 'bicubic')
    assert res.returncode == 0, res.stderr
    ckpt = torch.load(dst)
    assert ckpt['meta']['patch_resample'] == 'bicubic'
    out = ckpt['state_dict']
    grid = official['pos_embed'][:, 1:].reshape(1, 37, 37, -1).permute(0, 3, 1, 2)
    grid = _bicubic(grid, (6, 6)).permute(0, 2, 3, 1).reshape(1, 36, -1)
    assert torch.equal(out['pos_embed'], torch.cat([official['pos_embed'][:, :1], grid], dim=1))
    assert torch.equal(out['patch_embed.proj.weight'], _bicubic(official['patch_embed.proj.weight'], (16, 16)))
    peer = timm.create_model('vit_small_patch14_dinov2', pretrained=False, num_classes=0, img_size=96, patch_size=16)
    pinv = convert_to_timm(official, peer)  # the default, timm's
    assert not torch.allclose(pinv['patch_embed.proj.weight'], out['patch_embed.proj.weight'], rtol=0.05, atol=0)
    assert _convert_cli(src, tmp_path / 'x.pth', 'dinov2-s', '--patch-resample', 'area').returncode != 0
