"""Rein: the block adapter, the query link to Mask2Former, and tools/convert/rein.py.

The released "rein and head" layout is reproduced with random tensors: ``backbone.reins.*`` with the
tokens of every layer stacked (low-rank factors ``L x m x r`` and ``L x r x C``), the shared MLPs, scale and
query layers, and a ``decode_head.*`` that is mmseg's Mask2Former head without ``query_embed`` /
``query_feat`` and with ``querys2feat``. After conversion, our model's features, query embeddings and head
outputs are compared with a reference written here from the paper's formulas as the released code
computes them (token 0 only in the softmax normaliser, scaled residual, max / mean / last pooling of the
projected tokens). The forward tests use a 4-block ViT of width 64; the DINOv2-L parameter count runs on
the meta device.
"""
import copy
import os.path as osp
import warnings

import pytest
import timm
import torch
import torch.nn.functional as F
from mmengine.config import Config
from mmengine.registry import init_default_scope

from conftest import REPO, tiny_vit
from mmdg.adapters import ReinBlock, adapter_modules, count_parameters, inject_adapters, merge_adapters
from mmdg.convert.rein import DEFAULT_CONFIG, rein_to_mmdg
from mmdg.utils.checkpoint import CheckpointError


DIM, DEPTH, HEADS, M, R, Q = 64, 4, 2, 10, 4, 32
CONFIG = osp.join(REPO, 'configs', 'dg_seg', 'rein', 'rein_dinov2-l_mask2former_1xb4-40k_gta5-to-cbm-512x512.py')


def rein_parameters(L, C, m, r, q):
    """The paper's count: per-layer low-rank tokens, two shared C x C layers, the scale, and the query
    layers (C -> q, 3q -> q)."""
    return L * (m * r + r * C) + 2 * (C * C + C) + 1 + (C * q + q) + (3 * q * q + q)


def test_dinov2_l_has_the_papers_2_99m_parameters():
    assert rein_parameters(24, 1024, 100, 16, 256) == 2_990_081
    with torch.device('meta'):
        vit = timm.create_model('vit_large_patch14_dinov2', pretrained=False, num_classes=0, img_size=512,
                                patch_size=16)
    inject_adapters(vit, dict(type='Rein', token_length=100, r=16, query_dim=256, link_queries=True))
    assert count_parameters(vit) == 2_990_081  # the paper's 2.99M
    assert [n for n, p in vit.named_parameters() if p.requires_grad and not n.startswith('blocks.0.')][:2] == \
        ['blocks.1.learnable_tokens_a', 'blocks.1.learnable_tokens_b']  # the shared layers live once, in block 0


def test_adapter_contract():
    vit = tiny_vit('dinov2').eval()
    inject_adapters(vit, dict(type='Rein', token_length=M, r=R, query_dim=Q, link_queries=True, blocks=(1, 4)))
    blocks = [m for _, m in adapter_modules(vit)]
    assert [type(b) for b in blocks] == [ReinBlock] * 3 and blocks[0].shared is blocks[2].shared
    assert count_parameters(vit) == rein_parameters(3, DIM, M, R, Q)
    keys = [k for k in vit.state_dict() if '.reins.' in k]
    assert keys and all(k.startswith('blocks.1.reins.') for k in keys)  # one copy in checkpoints
    assert set(vit.state_dict()) - {k for k in vit.state_dict() if 'learnable' in k or '.reins.' in k} == \
        {k.replace('blocks.1.', 'blocks.1.block.').replace('blocks.2.', 'blocks.2.block.')
          .replace('blocks.3.', 'blocks.3.block.') for k in tiny_vit('dinov2').state_dict()}
    twin = copy.deepcopy(vit)  # EMA copies: the shared layers stay shared, and are the copy's own
    assert twin.blocks[3].shared is twin.blocks[1].reins and twin.blocks[3].shared is not vit.blocks[1].reins
    shared_ids = {id(p) for p in blocks[0].shared.parameters()}
    assert shared_ids <= {id(p) for p in blocks[2].trainable_parameters()}
    with pytest.warns(UserWarning, match='3 Rein adapter'):
        merge_adapters(vit)
    assert len(adapter_modules(vit)) == 3
    with pytest.raises(ValueError, match='token_length'):
        inject_adapters(tiny_vit('dinov2'), dict(type='Rein', token_length=1))


# --- official layouts and the reference forward -----------------------------------------------------------
def small_cfg(num_queries=M):
    """The DINOv2-L Rein config at toy size: a 4-block ViT of width 64, a narrow Mask2Former."""
    cfg = Config.fromfile(CONFIG)
    bb = cfg.model.backbone
    bb.update(pretrained=None, img_size=64, out_indices=(0, 1, 2, 3),
              model_kwargs=dict(embed_dim=DIM, depth=DEPTH, num_heads=HEADS))
    bb.adapter.update(token_length=num_queries, r=R, query_dim=Q)
    head = cfg.model.decode_head
    head.update(in_channels=[DIM] * 4, feat_channels=Q, out_channels=Q, num_queries=num_queries)
    head.pixel_decoder.encoder.num_layers = 1
    head.pixel_decoder.encoder.layer_cfg.self_attn_cfg.update(embed_dims=Q, num_heads=2)
    head.pixel_decoder.encoder.layer_cfg.ffn_cfg.update(embed_dims=Q, feedforward_channels=64)
    head.pixel_decoder.positional_encoding.num_feats = Q // 2
    head.positional_encoding.num_feats = Q // 2
    head.transformer_decoder.num_layers = 2
    for k in ('self_attn_cfg', 'cross_attn_cfg'):
        head.transformer_decoder.layer_cfg[k].update(embed_dims=Q, num_heads=2)
    head.transformer_decoder.layer_cfg.ffn_cfg.update(embed_dims=Q, feedforward_channels=64)
    cfg.model.test_cfg.update(crop_size=(64, 64), stride=(43, 43))
    return cfg


def official_reins(rnd, L=DEPTH, C=DIM, m=M, r=R, q=Q):
    """``backbone.reins.*`` as the released files hold them (LoRA-token variant)."""
    sd = {'learnable_tokens_a': rnd(L, m, r, std=0.3), 'learnable_tokens_b': rnd(L, r, C, std=0.3),
          'scale': torch.tensor(0.7)}
    for name, (o, i) in dict(mlp_token2feat=(C, C), mlp_delta_f=(C, C), transform=(q, C), merge=(q, 3 * q)).items():
        sd[f'{name}.weight'], sd[f'{name}.bias'] = rnd(o, i, std=i ** -0.5), rnd(o, std=0.1)
    return {'backbone.reins.' + k: v for k, v in sd.items()}


def official_head_state(cfg, rnd):
    """mmseg's Mask2FormerHead with the official Rein head's changes to its keys."""
    init_default_scope('mmseg')
    from mmseg.registry import MODELS
    head_cfg = copy.deepcopy(cfg.model.decode_head)
    head_cfg.pop('replace_query_feat')
    head_cfg.type = 'Mask2FormerHead'
    plain = MODELS.build(head_cfg)
    sd = {k: v + rnd(*v.shape, std=0.02) if v.is_floating_point() else v for k, v in plain.state_dict().items()
          if not k.startswith(('query_embed.', 'query_feat.'))}
    feat = head_cfg.feat_channels
    sd['querys2feat.weight'], sd['querys2feat.bias'] = rnd(feat, feat, std=feat ** -0.5), rnd(feat, std=0.1)
    return plain.eval(), {'decode_head.' + k: v for k, v in sd.items()}


def reference_refine(feats, tokens, reins, layer):
    """One block's refinement on (B, N, C) tokens with a leading class token, from the official tensors."""
    cls, f = feats[:, :1], feats[:, 1:]
    t = tokens[layer]
    attn = torch.softmax(torch.einsum('bnc,mc->bnm', f, t) * t.shape[-1] ** -0.5, dim=-1)
    value = F.linear(t[1:], reins['mlp_token2feat.weight'], reins['mlp_token2feat.bias'])
    delta = torch.einsum('bnm,mc->bnc', attn[:, :, 1:], value)
    delta = F.linear(delta + f, reins['mlp_delta_f.weight'], reins['mlp_delta_f.bias'])
    return torch.cat([cls, f + delta * reins['scale']], dim=1)


def reference_queries(tokens, reins):
    q = F.linear(tokens, reins['transform.weight'], reins['transform.bias']).permute(1, 2, 0)  # m x q x L
    L = q.shape[-1]
    pooled = torch.cat([F.max_pool1d(q, L), F.avg_pool1d(q, L), q[:, :, -1:]], dim=-1)
    return F.linear(pooled.flatten(-2), reins['merge.weight'], reins['merge.bias'])


def reference_backbone(vit, official, x):
    """The official ReinsDinoVisionTransformer forward: each block, then its refinement; features of
    blocks 0-3 as NCHW, resized x4, x2, x1, x0.5."""
    reins = {k[len('backbone.reins.'):]: v for k, v in official.items() if k.startswith('backbone.reins.')}
    tokens = reins['learnable_tokens_a'] @ reins['learnable_tokens_b']
    b, _, h, w = x.shape
    t = vit._pos_embed(vit.patch_embed(x))
    feats = []
    for i, blk in enumerate(vit.blocks):
        t = reference_refine(blk(t), tokens, reins, i)
        feats.append(t[:, 1:].permute(0, 2, 1).reshape(b, -1, h // 16, w // 16))
    for i, factor in ((0, 4), (1, 2), (3, 0.5)):
        feats[i] = F.interpolate(feats[i], scale_factor=factor, mode='bilinear', align_corners=False)
    return feats, reference_queries(tokens, reins)


@pytest.fixture(scope='module')
def release(tmp_path_factory):
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(1)

    def rnd(*shape, std=0.02):
        return std * torch.randn(*shape, generator=g)
    cfg = small_cfg()
    vit = timm.create_model('vit_small_patch14_dinov2', pretrained=False, num_classes=0, img_size=64, patch_size=16,
                            embed_dim=DIM, depth=DEPTH, num_heads=HEADS, init_values=0.5, dynamic_img_size=True).eval()
    plain_head, head_sd = official_head_state(cfg, rnd)
    official = dict(official_reins(rnd), **head_sd)
    root = tmp_path_factory.mktemp('rein')
    torch.save(vit.state_dict(), root / 'backbone.pth')
    torch.save({'state_dict': official, 'meta': {}}, root / 'rein_and_head.pth')
    return dict(cfg=cfg, vit=vit, plain_head=plain_head, official=official, root=root)


def test_converted_model_computes_the_official_forward(release, run_tool):
    out = release['root'] / 'mmdg.pth'
    cfg = release['cfg']
    # the CLI on the toy config (dumped, so that every shrinking option travels with it)
    cfg_path = release['root'] / 'small.py'
    cfg.dump(str(cfg_path))
    res = run_tool('convert/rein.py', release['root'] / 'backbone.pth', release['root'] / 'rein_and_head.pth', out,
                   '--config', cfg_path)
    assert res.returncode == 0 and 'wrote' in res.stdout, res.stderr
    ckpt = torch.load(out)
    assert ckpt['meta']['converted_from']['patch_resample'] == 'bicubic'

    init_default_scope('mmdg')
    from mmdg.registry import MODELS
    model = MODELS.build(copy.deepcopy(cfg.model))
    model.load_state_dict(ckpt['state_dict'], strict=True)
    model.eval()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        (feats, queries) = model.backbone(x)
        want_feats, want_queries = reference_backbone(release['vit'], release['official'], x)
        for a, b in zip(feats, want_feats):
            torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(queries, want_queries, rtol=1e-4, atol=1e-5)
        # the head: mmseg's Mask2Former head whose query embeddings are the Rein queries and whose query
        # features are querys2feat of them
        plain = release['plain_head']
        head_sd = {k[len('decode_head.'):]: v for k, v in release['official'].items() if k.startswith('decode_head.')}
        q2f_w, q2f_b = head_sd.pop('querys2feat.weight'), head_sd.pop('querys2feat.bias')
        head_sd['query_embed.weight'] = want_queries
        head_sd['query_feat.weight'] = F.linear(want_queries, q2f_w, q2f_b)
        plain.load_state_dict(head_sd, strict=True)
        metas = [dict(img_shape=(64, 64), ori_shape=(64, 64), pad_shape=(64, 64))] * 2
        got = model.decode_head.predict((feats, queries), metas, cfg.model.test_cfg)
        want = plain.predict(want_feats, metas, cfg.model.test_cfg)
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5)
        logits = model.encode_decode(x, metas)
        assert logits.shape == (2, 19, 64, 64)


def test_layouts_that_do_not_fit_are_refused(release, run_tool):
    init_default_scope('mmdg')
    from mmdg.registry import MODELS
    with torch.device('meta'):
        model = MODELS.build(copy.deepcopy(release['cfg'].model))
    backbone = release['vit'].state_dict()
    official = release['official']
    state = rein_to_mmdg(backbone, official, model)
    assert state['backbone.vit.blocks.2.learnable_tokens_a'].equal(official['backbone.reins.learnable_tokens_a'][2])
    assert state['backbone.vit.blocks.0.reins.merge.weight'] is official['backbone.reins.merge.weight']
    assert 'backbone.vit.blocks.3.block.attn.qkv.weight' in state
    fewer = dict(official, **{k: v[:3] for k, v in official.items() if 'learnable_tokens' in k})
    with pytest.raises(CheckpointError, match='tokens for 3 layers, but this config adapts 4 blocks'):
        rein_to_mmdg(backbone, fewer, model)
    other_rank = dict(official, **{'backbone.reins.learnable_tokens_a': torch.zeros(DEPTH, M, 8),
                                   'backbone.reins.learnable_tokens_b': torch.zeros(DEPTH, 8, DIM)})
    with pytest.raises(CheckpointError, match='learnable_tokens_a'):
        rein_to_mmdg(backbone, other_rank, model)
    with pytest.raises(CheckpointError, match='holds no backbone.reins'):
        rein_to_mmdg(backbone, {k: v for k, v in official.items() if 'reins' not in k}, model)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        res = run_tool('convert/rein.py', release['root'] / 'backbone.pth', release['root'] / 'rein_and_head.pth',
                       release['root'] / 'x.pth', '--config',
                       osp.join(REPO, 'configs', 'dg_seg', 'sora',
                                'sora_dinov2-l_mask2former_1xb4-40k_gta5-to-cbm-512x512.py'))
    assert res.returncode == 1 and 'no Rein adapter' in res.stderr


def test_released_rein_layout_of_the_official_model_converts_completely():
    """The "rein and head" file as the official Rein model's own state_dict makes it (tests/official/, built
    from the official code): every tensor has its place in mmdg's Rein recipe model and fills it."""
    import glob
    import json
    with open(osp.join(REPO, 'tests', 'official', 'rein_dinov2l_gta5_manifest.json')) as f:
        released = {k: torch.empty(s, device='meta') for k, s in json.load(f)['released'].items()}
    assert released['backbone.reins.learnable_tokens_a'].shape == (24, 100, 16)
    cfg = Config.fromfile(sorted(glob.glob(osp.join(REPO, DEFAULT_CONFIG)))[0])
    init_default_scope('mmdg')
    from mmdg.registry import MODELS
    model_cfg = copy.deepcopy(cfg.model)
    model_cfg.backbone.pretrained = None
    with torch.device('meta'):
        model = MODELS.build(model_cfg)
        dinov2 = timm.create_model('vit_large_patch14_dinov2', pretrained=False, num_classes=0)  # the 518 grid
    state = rein_to_mmdg(dinov2.state_dict(), released, model)
    own = model.state_dict()
    assert sorted(state) == sorted(own) and all(state[k].shape == own[k].shape for k in own)
