"""tools/convert/soma.py: released SoMA checkpoints (the official SoRA code's layout) -> mmdg.

The official tensors are random but laid out as Meta's ``dinov2_vit*14_pretrain.pth`` and as the official
"adapter & head" files (what its extraction script keeps of a trained ``PEFTBackboneEncoderDecoder``:
separate q/k/v LoRA factors, the backbone's biases, the mask token, the Mask2Former head; an
``ema_state_dict`` with a ``module.`` prefix). The converted model is checked against a forward pass
written here on those tensors, as the official ``DinoVisionTransformer`` computes it. The forward tests
use DINOv2-S shapes (12 blocks, the recipe's pattern: SoRA in the last 8, features of 4 blocks); the
full-size DINOv2-L layout and the refusals run on the meta device.
"""
import copy
import os.path as osp

import pytest
import torch
import torch.nn.functional as F
from mmengine.config import Config
from mmengine.registry import init_default_scope

from conftest import REPO
from mmdg.convert.released import build_on_meta, find_config
from mmdg.convert.soma import DEFAULT_CONFIGS, config_crop, select_soma_state, soma_to_mmdg
from mmdg.utils.checkpoint import CheckpointError


def default_config(crop):
    return find_config(DEFAULT_CONFIGS[crop])


#: DINOv2-S in the recipe's pattern: 12 blocks, blocks 0-3 frozen and plain, SoRA (r 16) in 4-11.
SMALL = dict(dim=384, depth=12, heads=6, start=4, out=(3, 5, 7, 11))
SMALL_OPTIONS = ['model.backbone.arch=dinov2-s', 'model.backbone.out_indices=[3,5,7,11]',
                 'model.backbone.frozen_blocks=4', 'model.backbone.adapter.blocks=[4,12]',
                 'model.decode_head.in_channels=[384,384,384,384]']
LARGE = dict(dim=1024, depth=24, heads=16, start=8, out=(7, 11, 15, 23))
TARGETS = ('attn.q', 'attn.k', 'attn.v', 'attn.proj', 'mlp.fc1', 'mlp.fc2')


# --- official layouts ------------------------------------------------------------------------------
class Random:
    """Random tensors (or empty ones on the meta device)."""

    def __init__(self, seed=0, device='cpu'):
        self.g = torch.Generator().manual_seed(seed)
        self.device = device

    def __call__(self, *shape, std=0.02, mean=0.0):
        if self.device == 'meta':
            return torch.empty(*shape, device='meta')
        return mean + std * torch.randn(*shape, generator=self.g)


def meta_dinov2(dim, depth, rnd, patch=14, grid=37):
    """Meta's ``dinov2_vit*14_pretrain.pth`` layout (fused qkv, cls position, mask token, layer scale)."""
    sd = {'cls_token': rnd(1, 1, dim, std=0.5), 'pos_embed': rnd(1, 1 + grid * grid, dim, std=0.5),
          'mask_token': rnd(1, dim), 'patch_embed.proj.weight': rnd(dim, 3, patch, patch, std=0.05),
          'patch_embed.proj.bias': rnd(dim), 'norm.weight': rnd(dim, mean=1.0, std=0.1), 'norm.bias': rnd(dim)}
    for i in range(depth):
        p = f'blocks.{i}.'
        for norm in ('norm1', 'norm2'):
            sd[p + norm + '.weight'], sd[p + norm + '.bias'] = rnd(dim, mean=1.0, std=0.1), rnd(dim)
        for name, (d_out, d_in) in (('attn.qkv', (3 * dim, dim)), ('attn.proj', (dim, dim)),
                                    ('mlp.fc1', (4 * dim, dim)), ('mlp.fc2', (dim, 4 * dim))):
            sd[p + name + '.weight'], sd[p + name + '.bias'] = rnd(d_out, d_in, std=d_in ** -0.5), rnd(d_out)
        sd[p + 'ls1.gamma'], sd[p + 'ls2.gamma'] = rnd(dim, mean=0.3, std=0.1), rnd(dim, mean=0.3, std=0.1)
    return sd


def official_conversion(sd, grid, patch=16):
    """What the official conversion script does: bicubic kernel and position grid, q/k/v split."""
    out = dict(sd)
    out['patch_embed.proj.weight'] = F.interpolate(sd['patch_embed.proj.weight'].float(), size=(patch, patch),
                                                   mode='bicubic', align_corners=False)
    pos = sd['pos_embed']
    side = int((pos.shape[1] - 1) ** 0.5)
    tokens = pos[:, 1:].reshape(1, side, side, -1).permute(0, 3, 1, 2)
    tokens = F.interpolate(tokens, size=(grid, grid), mode='bicubic', align_corners=False)
    out['pos_embed'] = torch.cat([pos[:, :1], tokens.permute(0, 2, 3, 1).reshape(1, grid * grid, -1)], dim=1)
    for k in [k for k in out if '.attn.qkv.' in k]:
        for c, part in zip('qkv', out.pop(k).chunk(3, dim=0)):
            out[k.replace('.qkv.', f'.{c}.')] = part
    return out


def official_head(cfg, device='cpu', width=None):
    """mmseg's Mask2FormerHead as the official config builds it (the same class and settings)."""
    init_default_scope('mmseg')
    from mmseg.registry import MODELS
    head_cfg = copy.deepcopy(cfg.model.decode_head)
    if width:
        head_cfg.in_channels = [width] * 4
    with torch.device(device):
        head = MODELS.build(head_cfg)
    if device != 'meta':
        g = torch.Generator().manual_seed(3)
        with torch.no_grad():
            for p in head.parameters():
                p.add_(0.02 * torch.randn(p.shape, generator=g))
    return head.eval()


def trained_official_model(converted, head_sd, dim, depth, start, rnd, r=16):
    """The state dict of a trained official ``PEFTBackboneEncoderDecoder``: the converted ViT under
    ``backbone.model.`` with LoRA factors in blocks ``start``.. and moved biases, and the head."""
    sd = {'backbone.model.' + k: v for k, v in converted.items()}
    for i in range(start, depth):
        for name in TARGETS:
            d_out, d_in = sd[f'backbone.model.blocks.{i}.{name}.weight'].shape
            sd[f'backbone.model.blocks.{i}.{name}.lora_A.weight'] = rnd(r, d_in, std=d_in ** -0.5)
            sd[f'backbone.model.blocks.{i}.{name}.lora_B.weight'] = rnd(d_out, r, std=0.1 / r ** 0.5)
    for k, v in list(sd.items()):
        if k.endswith('.bias'):
            sd[k] = v + rnd(*v.shape)
    sd.update({'decode_head.' + k: v for k, v in head_sd.items()})
    return sd


def extract_like_official(sd):
    """The keys the official extraction script keeps: mask token, head, LoRA factors and every bias whose
    key contains one of the target names (q, k, v, ...; as 'k' is in 'backbone', all backbone biases)."""
    def keep(k):
        return (k == 'backbone.model.mask_token' or 'decode_head.' in k or 'lora' in k.lower()
                or (k.endswith('bias') and any(t in k for t in ('q', 'k', 'v', 'proj', 'fc1', 'fc2'))))
    return {k: v for k, v in sd.items() if keep(k)}


def merge_like_official(converted, soma_sd):
    """The official merge: the converted backbone under ``backbone.model.``, overwritten by the SoMA file."""
    merged = {'backbone.model.' + k: v for k, v in converted.items()}
    merged.update(soma_sd)
    return merged


# --- the reference forward: the official DinoVisionTransformer with SoRA layers, on official tensors ----
def reference_features(sd, x, dim, depth, heads, out, scale=1.0, patch=16):
    vit = {k[len('backbone.model.'):]: v for k, v in sd.items() if k.startswith('backbone.model.')}

    def linear(name, z):
        y = F.linear(z, vit[name + '.weight'], vit[name + '.bias'])
        if name + '.lora_A.weight' in vit:
            y = y + scale * (z @ vit[name + '.lora_A.weight'].t()) @ vit[name + '.lora_B.weight'].t()
        return y

    b = x.shape[0]
    t = F.conv2d(x, vit['patch_embed.proj.weight'], vit['patch_embed.proj.bias'], stride=patch)
    h, w = t.shape[-2:]
    t = torch.cat([vit['cls_token'].expand(b, -1, -1), t.flatten(2).transpose(1, 2)], dim=1)
    assert t.shape[1] == vit['pos_embed'].shape[1] and h == w  # the official forward adds pos_embed as it is
    t = t + vit['pos_embed']
    n, feats = t.shape[1], []
    for i in range(depth):
        p = f'blocks.{i}.'
        z = F.layer_norm(t, (dim,), vit[p + 'norm1.weight'], vit[p + 'norm1.bias'], eps=1e-6)
        q, k, v = (linear(p + 'attn.' + c, z).reshape(b, n, heads, dim // heads).transpose(1, 2) for c in 'qkv')
        attn = ((q * (dim // heads) ** -0.5) @ k.transpose(-2, -1)).softmax(dim=-1)
        t = t + vit[p + 'ls1.gamma'] * linear(p + 'attn.proj', (attn @ v).transpose(1, 2).reshape(b, n, dim))
        z = F.layer_norm(t, (dim,), vit[p + 'norm2.weight'], vit[p + 'norm2.bias'], eps=1e-6)
        t = t + vit[p + 'ls2.gamma'] * linear(p + 'mlp.fc2', F.gelu(linear(p + 'mlp.fc1', z)))
        if i in out:
            feats.append(t[:, 1:].permute(0, 2, 1).reshape(b, -1, h, w))
    for i, factor in ((0, 4), (1, 2), (3, 0.5)):
        feats[i] = F.interpolate(feats[i], scale_factor=factor, mode='bilinear', align_corners=False)
    return feats


# --- fixtures ----------------------------------------------------------------------------------------
def small_cfg():
    """The default (GTA5 -> C/B/M 512) SoRA config with ``SMALL_OPTIONS``, as the CLI's --cfg-options sets them."""
    from mmengine.config import DictAction
    cfg = Config.fromfile(default_config(512))
    cfg.merge_from_dict({k: DictAction._parse_iterable(v) for k, v in (o.split('=', 1) for o in SMALL_OPTIONS)})
    return cfg


@pytest.fixture(scope='module')
def release(tmp_path_factory):
    """Meta's DINOv2 file and a SoMA file (averaged ``state_dict`` + raw ``ema_state_dict``) at DINOv2-S size."""
    torch.manual_seed(0)
    root = tmp_path_factory.mktemp('soma')
    cfg = small_cfg()
    rnd = Random(1)
    dinov2 = meta_dinov2(SMALL['dim'], SMALL['depth'], rnd)
    converted = official_conversion(dinov2, grid=32)
    head = official_head(cfg)
    averaged = extract_like_official(trained_official_model(converted, head.state_dict(), SMALL['dim'],
                                                            SMALL['depth'], SMALL['start'], rnd))
    raw = {k: v + rnd(*v.shape, std=0.05) for k, v in averaged.items()}
    torch.save(dinov2, root / 'dinov2_vits14_pretrain.pth')
    torch.save({'state_dict': averaged, 'ema_state_dict': {'module.' + k: v for k, v in raw.items()}},
               root / 'soma_best.pth')
    return dict(root=root, cfg=cfg, converted=converted, head=head, averaged=averaged, raw=raw,
                dinov2=root / 'dinov2_vits14_pretrain.pth', soma=root / 'soma_best.pth')


def load_converted(cfg, path):
    """The converted file through the tools' own loading path (tools/test.py, cross_domain_eval.py)."""
    from mmseg.apis import init_model
    from mmdg.utils.checkpoint import build_and_load
    cfg = copy.deepcopy(cfg)
    return build_and_load(cfg.model, str(path), lambda: init_model(cfg, None, device='cpu')).eval()


# --- tests -------------------------------------------------------------------------------------------
@pytest.mark.tool
def test_converted_model_computes_the_official_forward(run_tool, release):
    out = release['root'] / 'mmdg.pth'
    res = run_tool('convert/soma.py', release['dinov2'], release['soma'], out, '--cfg-options', *SMALL_OPTIONS)
    assert res.returncode == 0, res.stderr
    assert 'EMA-averaged' in res.stdout and 'wrote' in res.stdout
    meta = torch.load(out)['meta']['converted_from']
    assert meta['patch_resample'] == 'bicubic' and meta['crop'] == 512 and 'EMA' in meta['weights']

    model = load_converted(release['cfg'], out)
    merged = merge_like_official(release['converted'], release['averaged'])
    x = torch.randn(1, 3, 512, 512)
    with torch.no_grad():
        ours = model.backbone(x)
        want = reference_features(merged, x, SMALL['dim'], SMALL['depth'], SMALL['heads'], SMALL['out'])
        for a, b, stride in zip(ours, want, (4, 8, 16, 32)):
            assert a.shape == b.shape == (1, SMALL['dim'], 512 // stride, 512 // stride)
            torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)
        # the same head weights, applied to the reference features
        metas = [dict(img_shape=(512, 512), ori_shape=(512, 512), pad_shape=(512, 512))]
        logits = model.encode_decode(x, metas)
        head = release['head']
        want_logits = head.predict(want, metas, release['cfg'].model.test_cfg)
        assert logits.shape == (1, 19, 512, 512)
        torch.testing.assert_close(logits, want_logits, rtol=1e-4, atol=1e-4)
        # and the plain pre-trained weights (W_pre, not W_pre - sBA) are the frozen residual
        qkv = model.backbone.vit.blocks[SMALL['start']].attn.qkv
        w = torch.cat([release['converted'][f'blocks.{SMALL["start"]}.attn.{c}.weight'] for c in 'qkv'])
        assert torch.equal(qkv.base.weight, w)


def test_state_selection(run_tool, release, tmp_path):
    """Default / --ema: the averaged weights (``state_dict``); --no-ema: the raw ones (``ema_state_dict``)."""
    key = f'backbone.model.blocks.{SMALL["start"]}.attn.k.lora_B.weight'
    name = f'backbone.vit.blocks.{SMALL["start"]}.attn.qkv.lora_B'
    out = tmp_path / 'raw.pth'
    res = run_tool('convert/soma.py', release['dinov2'], release['soma'], out, '--no-ema', '--cfg-options', *SMALL_OPTIONS)
    assert res.returncode == 0, res.stderr
    assert 'raw training weights' in res.stdout
    assert torch.equal(torch.load(out)['state_dict'][name][1], release['raw'][key])  # k: the second slice
    ckpt = torch.load(release['soma'])
    for ema in (None, True):
        state, which = select_soma_state(ckpt, ema)
        assert torch.equal(state[key], release['averaged'][key]) and 'EMA-averaged' in which
    # a file without EMA: its only weights by default, and --ema refuses it
    plain = {'state_dict': release['averaged']}
    state, which = select_soma_state(plain)
    assert torch.equal(state[key], release['averaged'][key]) and 'no EMA' in which
    with pytest.raises(CheckpointError, match='no "ema_state_dict"'):
        select_soma_state(plain, ema=True)


def test_mmengine_emahook_keeps_the_averaged_weights_in_state_dict():
    """Why the default takes ``state_dict``: mmengine's EMAHook swaps the two dicts when it saves."""
    from mmengine.hooks import EMAHook
    from mmengine.model import ExponentialMovingAverage
    model = torch.nn.Linear(3, 2)
    hook = EMAHook(momentum=0.5)
    hook.src_model = model
    hook.ema_model = ExponentialMovingAverage(model, momentum=0.5)
    hook.ema_model.update_parameters(model)
    with torch.no_grad():
        model.weight.add_(1.0)
    hook.ema_model.update_parameters(model)
    averaged, raw = hook.ema_model.module.weight.detach().clone(), model.weight.detach().clone()
    assert not torch.equal(averaged, raw)
    ckpt = {'state_dict': {k: v.clone() for k, v in model.state_dict().items()}}  # what Runner saves
    hook.before_save_checkpoint(runner=None, checkpoint=ckpt)
    assert torch.equal(ckpt['state_dict']['weight'], averaged)
    assert torch.equal(ckpt['ema_state_dict']['module.weight'], raw)
    assert torch.equal(select_soma_state(ckpt)[0]['weight'], averaged)
    assert torch.equal(select_soma_state(ckpt, ema=False)[0]['weight'], raw)


def test_cli_refuses_a_checkpoint_of_another_rank_or_crop(run_tool, release, tmp_path):
    rnd = Random(5)
    other = extract_like_official(trained_official_model(release['converted'], release['head'].state_dict(),
                                                         SMALL['dim'], SMALL['depth'], SMALL['start'], rnd, r=8))
    path = tmp_path / 'rank8.pth'
    torch.save({'state_dict': other}, path)
    res = run_tool('convert/soma.py', release['dinov2'], path, tmp_path / 'out.pth', '--cfg-options', *SMALL_OPTIONS)
    assert res.returncode == 1 and not (tmp_path / 'out.pth').exists()
    assert 'error: CheckpointError' in res.stderr and 'mis-shaped (64)' in res.stderr
    assert ('backbone.vit.blocks.10.attn.qkv.lora_A (from backbone.model.blocks.10.attn.{q,k,v}.lora_A.weight): '
            'checkpoint (3, 8, 384) vs model (3, 16, 384)') in res.stderr
    assert 'the checkpoint: width 384, SoRA r=8 in blocks 4-11; this config: width 384, SoRA r=16 in blocks 4-11' \
        in res.stderr
    res = run_tool('convert/soma.py', release['dinov2'], release['soma'], tmp_path / 'out.pth', '--crop', '1024',
                  '--config', default_config(512))
    assert res.returncode != 0 and '--crop 1024' in res.stderr and '512x512' in res.stderr
    # a tools/convert/vit.py output made with timm's resampling (no patch_resample in its meta: the old default)
    pinv = tmp_path / 'dinov2_l_p16_512.pth'
    torch.save({'state_dict': {'pos_embed': torch.zeros(1, 1025, 384)}, 'meta': dict(arch='dinov2-s', patch_size=16)},
               pinv)
    res = run_tool('convert/soma.py', pinv, release['soma'], tmp_path / 'out.pth', '--cfg-options', *SMALL_OPTIONS)
    assert res.returncode != 0 and 'converted with --patch-resample pinv' in res.stderr
    assert run_tool('convert/soma.py', release['dinov2'], release['soma'], release['soma']).returncode != 0  # never overwrites input


# --- full size (DINOv2-L, the recipe configs), on the meta device --------------------------------------
def large_release(cfg, dim=1024, depth=24, start=8, r=16, grid=37):
    rnd = Random(device='meta')
    dinov2 = meta_dinov2(dim, depth, rnd, grid=grid)
    converted = official_conversion(dinov2, grid=32)
    head = official_head(cfg, device='meta', width=dim).state_dict()
    return dinov2, extract_like_official(trained_official_model(converted, head, dim, depth, start, rnd, r=r))


@pytest.mark.parametrize('crop', [512, 1024])
def test_full_size_release_fits_the_recipe_config(crop):
    cfg = Config.fromfile(default_config(crop))
    assert config_crop(cfg) == crop
    model = build_on_meta(cfg)
    dinov2, soma = large_release(cfg)
    assert len([k for k in soma if 'lora_A' in k]) == 16 * 6
    state = soma_to_mmdg(dinov2, soma, model)
    own = model.state_dict()
    assert list(state) == list(own)
    assert all(state[k].shape == own[k].shape for k in own)
    grid = crop // 16
    assert state['backbone.vit.pos_embed'].shape == (1, 1 + grid * grid, 1024)
    assert state['backbone.vit.blocks.8.attn.qkv.lora_A'].shape == (3, 16, 1024)
    assert state['backbone.vit.blocks.23.mlp.fc1.lora_B'].shape == (1, 4096, 16)
    assert 'backbone.vit.blocks.7.attn.qkv.bias' in state and 'backbone.vit.blocks.8.attn.qkv.base.bias' in state


@pytest.fixture(scope='module')
def large():
    cfg = Config.fromfile(default_config(512))
    return cfg, build_on_meta(cfg), large_release(cfg)


def test_vit_b_release_is_refused_with_the_keys(large):
    cfg, model, (dinov2, _) = large
    _, vit_b = large_release(cfg, dim=768, depth=12)
    with pytest.raises(CheckpointError) as err:
        soma_to_mmdg(dinov2, vit_b, model, soma_source='soma_vitb.pth')
    msg = str(err.value)
    assert msg.startswith('soma_vitb.pth (over the DINOv2 checkpoint) does not fit')
    assert 'missing (' in msg and 'backbone.vit.blocks.12.attn.qkv.lora_A' in msg
    assert ('backbone.vit.blocks.0.attn.proj.bias (from backbone.model.blocks.0.attn.proj.bias): '
            'checkpoint (768,) vs model (1024,)') in msg
    assert 'the checkpoint: width 768, SoRA r=16 in blocks 8-11; this config: width 1024, SoRA r=16 in blocks 8-23' \
        in msg


def test_vit_b_dinov2_is_refused(large):
    cfg, model, (_, soma) = large
    dinov2_b = meta_dinov2(768, 12, Random(device='meta'))
    with pytest.raises(CheckpointError, match=r'dinov2_vitb14_pretrain.pth does not fit the backbone of this config'
                                              r'(.|\n)*mis-shaped'):
        soma_to_mmdg(dinov2_b, soma, model, dinov2_source='dinov2_vitb14_pretrain.pth')


def test_another_crop_size_is_refused(large):
    cfg, model, (dinov2, soma) = large
    # a merged full file of a 1024 model holds its 64x64 position grid
    merged = dict(soma, **{'backbone.model.pos_embed': torch.empty(1, 1 + 64 * 64, 1024, device='meta')})
    with pytest.raises(CheckpointError, match=r'backbone\.vit\.pos_embed \(from backbone\.model\.pos_embed\): '
                                              r'checkpoint \(1, 4097, 1024\) vs model \(1, 1025, 1024\)'):
        soma_to_mmdg(dinov2, merged, model)
    # the official conversion for 1024 crops as the DINOv2 file: not resampled a second time
    converted_1024 = official_conversion(dinov2, grid=64)
    with pytest.raises(CheckpointError, match=r'already converted(.|\n)*64x64 grid(.|\n)*32x32 grid'):
        soma_to_mmdg(converted_1024, soma, model)
    # the official conversion for this crop size is accepted as the DINOv2 file
    soma_to_mmdg(official_conversion(dinov2, grid=32), soma, model)


def test_adapters_in_other_blocks_or_none_are_refused(large):
    cfg, model, (dinov2, _) = large
    _, early = large_release(cfg, start=4)
    with pytest.raises(CheckpointError, match=r'unexpected \(32\): backbone\.vit\.blocks\.4\.attn\.proj\.lora_A'):
        soma_to_mmdg(dinov2, early, model)
    with pytest.raises(CheckpointError, match='holds no adapter factor'):
        soma_to_mmdg(dinov2, {'decode_head.x': torch.zeros(1)}, model)


# --- detection: the released DGOD checkpoint (DINOv2 SoRA + Co-DINO) ---------------------------------
DET_CONFIG = 'configs/dg_det/sora/sora_dinov2-l_codino_4xb2-40k_dwd-1024.py'
#: the Co-DINO recipe on DINOv2-S at 256 px, one encoder and two decoder layers, 10 queries, narrow heads
DET_OPTIONS = SMALL_OPTIONS[:4] + [
    'model.backbone.img_size=256', 'model.neck.in_channels=[384,384,384,384]', 'model.num_queries=10',
    'model.encoder.num_layers=1', 'model.encoder.layer_cfg.ffn_cfg.feedforward_channels=64',
    'model.decoder.num_layers=2', 'model.decoder.layer_cfg.ffn_cfg.feedforward_channels=64',
    'model.dn_cfg.group_cfg.num_dn_queries=10', 'model.test_cfg.max_per_img=10',
    'model.roi_head.0.bbox_head.fc_out_channels=64', 'model.aux_bbox_head.0.feat_channels=64']
DET = dict(queries=10, enc=1, dec=2, ffn=64, classes=7, levels=5, roi_fc=64, atss=64)


def official_codino_layout(rnd, width=SMALL['dim'], d=256, heads=8, points=4):
    """The non-backbone tensors of a trained official ``PEFTBackboneCoDETR`` (Co-DINO), named and shaped as
    the official modules hold them: ChannelMapper neck, ``CoDINOHead`` with its mmcv-1.x style transformer
    (``attentions`` / ``ffns`` / ``norms`` per layer), RPN, one ``CoStandardRoIHead``, one ``CoATSSHead``."""
    sd = {}

    def lin(name, d_out, d_in, bias=True):
        sd[name + '.weight'] = rnd(d_out, d_in, std=d_in ** -0.5)
        if bias:
            sd[name + '.bias'] = rnd(d_out)

    def conv(name, d_out, d_in, k, bias=True):
        sd[name + '.weight'] = rnd(d_out, d_in, k, k, std=(d_in * k * k) ** -0.5)
        if bias:
            sd[name + '.bias'] = rnd(d_out)

    def norm(name, n):
        sd[name + '.weight'], sd[name + '.bias'] = rnd(n, mean=1.0, std=0.1), rnd(n)

    def deform(name, levels=DET['levels']):
        lin(name + '.sampling_offsets', heads * levels * points * 2, d)
        lin(name + '.attention_weights', heads * levels * points, d)
        lin(name + '.value_proj', d, d)
        lin(name + '.output_proj', d, d)

    def ffn(name):
        lin(name + '.layers.0.0', DET['ffn'], d)
        lin(name + '.layers.1', d, DET['ffn'])

    for i in range(4):
        conv(f'neck.convs.{i}.conv', d, width, 1, bias=False)
        norm(f'neck.convs.{i}.gn', d)
    conv('neck.extra_convs.0.conv', d, width, 3, bias=False)
    norm('neck.extra_convs.0.gn', d)
    t = 'query_head.transformer.'
    sd[t + 'level_embeds'] = rnd(DET['levels'], d)
    for i in range(DET['enc']):
        deform(f'{t}encoder.layers.{i}.attentions.0')
        ffn(f'{t}encoder.layers.{i}.ffns.0')
        for j in range(2):
            norm(f'{t}encoder.layers.{i}.norms.{j}', d)
    for i in range(DET['dec']):
        p = f'{t}decoder.layers.{i}.'
        sd[p + 'attentions.0.attn.in_proj_weight'] = rnd(3 * d, d, std=d ** -0.5)
        sd[p + 'attentions.0.attn.in_proj_bias'] = rnd(3 * d)
        lin(p + 'attentions.0.attn.out_proj', d, d)
        deform(p + 'attentions.1')
        ffn(p + 'ffns.0')
        for j in range(3):
            norm(p + f'norms.{j}', d)
    lin(t + 'decoder.ref_point_head.0', d, 2 * d)  # the official nn.Sequential(Linear, ReLU, Linear)
    lin(t + 'decoder.ref_point_head.2', d, d)
    norm(t + 'decoder.norm', d)
    lin(t + 'enc_output', d, d)
    norm(t + 'enc_output_norm', d)
    sd[t + 'query_embed.weight'] = rnd(DET['queries'], d, std=1.0)
    for g in range(2):
        lin(f'{t}aux_pos_trans.{g}', d, 2 * d)
        norm(f'{t}aux_pos_trans_norm.{g}', d)
    sd['query_head.dn_generator.label_embedding.weight'] = rnd(DET['classes'], d, std=1.0)
    for i in range(DET['dec'] + 1):
        lin(f'query_head.cls_branches.{i}', DET['classes'], d)
        lin(f'query_head.reg_branches.{i}.0', d, d)
        lin(f'query_head.reg_branches.{i}.2', d, d)
        lin(f'query_head.reg_branches.{i}.4', 4, d)
    conv('query_head.downsample.0', d, d, 3)
    norm('query_head.downsample.1', d)
    conv('rpn_head.rpn_conv', d, d, 3)
    conv('rpn_head.rpn_cls', 9, d, 1)
    conv('rpn_head.rpn_reg', 36, d, 1)
    lin('roi_head.0.bbox_head.shared_fcs.0', DET['roi_fc'], d * 49)
    lin('roi_head.0.bbox_head.shared_fcs.1', DET['roi_fc'], DET['roi_fc'])
    lin('roi_head.0.bbox_head.fc_cls', DET['classes'] + 1, DET['roi_fc'])
    lin('roi_head.0.bbox_head.fc_reg', 4 * DET['classes'], DET['roi_fc'])
    for branch in ('cls', 'reg'):
        conv(f'bbox_head.0.{branch}_convs.0.conv', DET['atss'], d, 3, bias=False)
        norm(f'bbox_head.0.{branch}_convs.0.gn', DET['atss'])
    conv('bbox_head.0.atss_cls', DET['classes'], DET['atss'], 3)
    conv('bbox_head.0.atss_reg', 4, DET['atss'], 3)
    conv('bbox_head.0.atss_centerness', 1, DET['atss'], 3)
    for i in range(6):
        sd[f'bbox_head.0.scales.{i}.scale'] = rnd(1, mean=1.0, std=0.1)[0]
    return sd


def reference_neck(sd, feats):
    """ChannelMapper as the official config builds it: 1x1 conv + GN per level, a 3x3 stride-2 conv + GN on
    the last input for the fifth level."""
    def conv_gn(name, x, stride=1, pad=0):
        x = F.conv2d(x, sd[name + '.conv.weight'], None, stride=stride, padding=pad)
        return F.group_norm(x, 32, sd[name + '.gn.weight'], sd[name + '.gn.bias'])
    outs = [conv_gn(f'neck.convs.{i}', f) for i, f in enumerate(feats)]
    return outs + [conv_gn('neck.extra_convs.0', feats[-1], stride=2, pad=1)]


def test_released_detection_checkpoint_converts(run_tool, tmp_path):
    """The complete official layout (backbone with SoRA factors, neck, Co-DINO query head, RPN, RoI and ATSS
    heads) converts onto mmdg's CoDINO with every tensor placed; backbone + neck features equal the
    reference computed on the official tensors, and the query head's tensors land where the decoder reads
    them."""
    rnd = Random(5)
    dinov2 = meta_dinov2(SMALL['dim'], SMALL['depth'], rnd)
    converted = official_conversion(dinov2, grid=16)
    heads = official_codino_layout(rnd)
    released = trained_official_model(converted, {}, SMALL['dim'], SMALL['depth'], SMALL['start'], rnd)
    released.update(heads)
    torch.save(dinov2, tmp_path / 'dinov2.pth')
    torch.save({'state_dict': released}, tmp_path / 'dgod.pth')
    out = tmp_path / 'mmdg_det.pth'
    res = run_tool('convert/soma.py', tmp_path / 'dinov2.pth', tmp_path / 'dgod.pth', out, '--config', DET_CONFIG,
                  '--cfg-options', *DET_OPTIONS)
    assert res.returncode == 0, res.stderr
    assert 'wrote' in res.stdout

    from mmengine.config import DictAction
    cfg = Config.fromfile(osp.join(REPO, DET_CONFIG))
    cfg.merge_from_dict({k: DictAction._parse_iterable(v) for k, v in (o.split('=', 1) for o in DET_OPTIONS)})
    cfg.model.backbone.pretrained = None
    init_default_scope('mmdg')
    from mmdg.registry import MODELS
    with torch.device('meta'):  # every tensor comes from the file (no SoRA SVDs at build, ~1 min here)
        model = MODELS.build(cfg.model)
    model.load_state_dict(torch.load(out)['state_dict'], strict=True, assign=True)
    model.data_preprocessor.to_empty(device='cpu')  # its mean / std are not checkpoint tensors; unused here
    assert not any(t.is_meta for t in [*model.parameters(), *model.buffers()])
    model.eval()
    own = model.state_dict()
    # every official head tensor is in the converted model, unchanged, under its mmdg name
    from mmdg.convert.codino import official_codino_key
    for k, v in heads.items():
        assert torch.equal(own[official_codino_key(k)], v), k
    merged = merge_like_official(converted, released)
    x = torch.randn(1, 3, 256, 256)
    with torch.no_grad():
        ours = model.extract_feat(x)
        want = reference_neck(merged, reference_features(merged, x, SMALL['dim'], SMALL['depth'], SMALL['heads'],
                                                         SMALL['out']))
    assert len(ours) == 5
    for a, b, stride in zip(ours, want, (4, 8, 16, 32, 64)):
        assert a.shape == b.shape == (1, 256, 256 // stride, 256 // stride)
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)


def test_detection_checkpoint_with_a_foreign_tensor_is_refused():
    from mmdg.convert.codino import codino_soma_to_mmdg
    with pytest.raises(CheckpointError, match='no place'):
        codino_soma_to_mmdg({}, {'query_head.transformer.pos_trans.weight': torch.zeros(1)}, torch.nn.Module())


def reference_codino_decoder(sd, feats, num_queries=DET['queries'], heads=8, points=4):
    """DINO's inference path (two-stage query selection, iterative box refinement) written on the official
    Co-DINO tensors: the last decoder layer's class logits and (cx, cy, w, h) boxes, for one unpadded image.
    Only parameter-free helpers come from the libraries (sine encodings, the deformable sampling op)."""
    from mmcv.ops.multi_scale_deform_attn import multi_scale_deformable_attn_pytorch
    from mmdet.models.layers import SinePositionalEncoding
    from mmdet.models.layers.transformer import coordinate_to_encoding, inverse_sigmoid
    t, d = 'query_head.transformer.', 256

    def lin(name, x):
        return F.linear(x, sd[name + '.weight'], sd[name + '.bias'])

    def ln(name, x):
        return F.layer_norm(x, (d,), sd[name + '.weight'], sd[name + '.bias'])

    def ffn(name, x):
        return x + lin(name + '.layers.1', F.relu(lin(name + '.layers.0.0', x)))

    def deform(name, query, value, pos, ref):
        bs, nq, _ = query.shape
        q = query + pos
        v = lin(name + '.value_proj', value).view(bs, value.shape[1], heads, d // heads)
        off = lin(name + '.sampling_offsets', q).view(bs, nq, heads, levels, points, 2)
        w = lin(name + '.attention_weights', q).view(bs, nq, heads, levels * points).softmax(-1)
        w = w.view(bs, nq, heads, levels, points)
        if ref.shape[-1] == 2:
            norm = torch.stack([shapes[:, 1], shapes[:, 0]], -1)
            loc = ref[:, :, None, :, None, :] + off / norm[None, None, None, :, None, :]
        else:
            loc = ref[:, :, None, :, None, :2] + off / points * ref[:, :, None, :, None, 2:] * 0.5
        return query + lin(name + '.output_proj', multi_scale_deformable_attn_pytorch(v, shapes, loc, w))

    levels = len(feats)
    bs = feats[0].shape[0]
    posenc = SinePositionalEncoding(num_feats=128, normalize=True, offset=0.0, temperature=20)
    shapes = torch.tensor([f.shape[-2:] for f in feats])
    src, pos, refs, proposals = [], [], [], []
    for lvl, f in enumerate(feats):
        h, w = f.shape[-2:]
        src.append(f.flatten(2).transpose(1, 2))
        pe = posenc(torch.zeros(bs, h, w, dtype=torch.bool)).flatten(2).transpose(1, 2)
        pos.append(pe + sd[t + 'level_embeds'][lvl])
        ys, xs = torch.meshgrid(torch.linspace(0.5, h - 0.5, h), torch.linspace(0.5, w - 0.5, w), indexing='ij')
        refs.append(torch.stack([xs.reshape(-1) / w, ys.reshape(-1) / h], -1))
        gy, gx = torch.meshgrid(torch.linspace(0, h - 1, h), torch.linspace(0, w - 1, w), indexing='ij')
        centre = torch.stack([(gx + 0.5) / w, (gy + 0.5) / h], -1).reshape(-1, 2)
        proposals.append(torch.cat([centre, torch.full_like(centre, 0.05 * 2.0 ** lvl)], -1))
    x, pos = torch.cat(src, 1), torch.cat(pos, 1)
    ref = torch.cat(refs)[None, :, None].expand(bs, -1, levels, -1)
    for i in range(DET['enc']):
        p = f'{t}encoder.layers.{i}.'
        x = ln(p + 'norms.0', deform(p + 'attentions.0', x, x, pos, ref))
        x = ln(p + 'norms.1', ffn(p + 'ffns.0', x))
    memory = x
    prop = torch.cat(proposals)[None].expand(bs, -1, -1)
    valid = ((prop > 0.01) & (prop < 0.99)).all(-1, keepdim=True)
    prop = torch.log(prop / (1 - prop)).masked_fill(~valid, float('inf'))
    out_mem = ln(t + 'enc_output_norm', lin(t + 'enc_output', memory.masked_fill(~valid, 0)))
    enc_cls = lin(f'query_head.cls_branches.{DET["dec"]}', out_mem)
    r = f'query_head.reg_branches.{DET["dec"]}'
    enc_box = lin(r + '.4', F.relu(lin(r + '.2', F.relu(lin(r + '.0', out_mem))))) + prop
    top = enc_cls.max(-1)[0].topk(num_queries, dim=1)[1]
    reference = torch.gather(enc_box, 1, top[..., None].expand(-1, -1, 4)).sigmoid()
    query = sd[t + 'query_embed.weight'][None].expand(bs, -1, -1)
    for i in range(DET['dec']):
        p = f'{t}decoder.layers.{i}.'
        sine = coordinate_to_encoding(reference)
        qpos = lin(t + 'decoder.ref_point_head.2', F.relu(lin(t + 'decoder.ref_point_head.0', sine)))
        qk = (query + qpos).transpose(0, 1)
        attn = F.multi_head_attention_forward(
            qk, qk, query.transpose(0, 1), d, heads, sd[p + 'attentions.0.attn.in_proj_weight'],
            sd[p + 'attentions.0.attn.in_proj_bias'], None, None, False, 0.0,
            sd[p + 'attentions.0.attn.out_proj.weight'], sd[p + 'attentions.0.attn.out_proj.bias'],
            training=False, need_weights=False)[0]
        query = ln(p + 'norms.0', query + attn.transpose(0, 1))
        query = ln(p + 'norms.1', deform(p + 'attentions.1', query, memory, qpos,
                                         reference[:, :, None].expand(-1, -1, levels, -1)))
        query = ln(p + 'norms.2', ffn(p + 'ffns.0', query))
        r = f'query_head.reg_branches.{i}'
        delta = lin(r + '.4', F.relu(lin(r + '.2', F.relu(lin(r + '.0', query)))))
        if i == DET['dec'] - 1:  # the head: last layer, normed states, the reference this layer started from
            hidden = ln(t + 'decoder.norm', query)
            cls = lin(f'query_head.cls_branches.{i}', hidden)
            r_out = lin(r + '.4', F.relu(lin(r + '.2', F.relu(lin(r + '.0', hidden)))))
            # the official Co-DINO head un-sigmoids its reference with eps 1e-3 (co_dino_head.py, forward)
            return cls, (r_out + inverse_sigmoid(reference, eps=1e-3)).sigmoid()
        reference = (delta + inverse_sigmoid(reference, eps=1e-3)).sigmoid()


def test_released_detection_decoder_equals_the_reference(tmp_path):
    """The converted Co-DINO's last decoder layer (class logits, boxes) equals DINO's inference written
    directly on the official tensors."""
    from mmdet.structures import DetDataSample
    from mmdg.convert.codino import codino_soma_to_mmdg
    from mmengine.config import DictAction
    rnd = Random(7)
    dinov2 = meta_dinov2(SMALL['dim'], SMALL['depth'], rnd)
    converted = official_conversion(dinov2, grid=16)
    released = trained_official_model(converted, {}, SMALL['dim'], SMALL['depth'], SMALL['start'], rnd)
    released.update(official_codino_layout(rnd))
    cfg = Config.fromfile(osp.join(REPO, DET_CONFIG))
    cfg.merge_from_dict({k: DictAction._parse_iterable(v) for k, v in (o.split('=', 1) for o in DET_OPTIONS)})
    cfg.model.backbone.pretrained = None
    init_default_scope('mmdg')
    from mmdg.registry import MODELS
    with torch.device('meta'):
        model = MODELS.build(cfg.model)
    state = codino_soma_to_mmdg(dinov2, released, model)
    model.load_state_dict(state, strict=True, assign=True)
    model.data_preprocessor.to_empty(device='cpu')
    model.eval()
    merged = merge_like_official(converted, released)
    x = torch.randn(1, 3, 256, 256)
    sample = DetDataSample(metainfo=dict(img_shape=(256, 256), batch_input_shape=(256, 256), pad_shape=(256, 256)))
    with torch.no_grad():
        feats = model.extract_feat(x)
        head_inputs = model.forward_transformer(feats, [sample])
        cls, boxes = model.bbox_head(head_inputs['hidden_states'], head_inputs['references'])
        want_cls, want_boxes = reference_codino_decoder(merged, reference_neck(merged, reference_features(
            merged, x, SMALL['dim'], SMALL['depth'], SMALL['heads'], SMALL['out'])))
    torch.testing.assert_close(cls[-1], want_cls, rtol=1e-3, atol=1e-3)
    torch.testing.assert_close(boxes[-1], want_boxes, rtol=1e-3, atol=1e-3)


# --- the released layouts as the official code defines them (tests/official/, made from the official models)
def official_manifest(name):
    import json
    with open(osp.join(REPO, 'tests', 'official', name)) as f:
        return json.load(f)


def test_released_detection_layout_of_the_official_model_converts_completely():
    """Every tensor of the released detection file, named and shaped as the official DGOD model and its
    extraction script make it (not as we wrote it by hand), has its place in mmdg's full-size Co-DINO, and
    every tensor of that model is filled: an unmapped, unexpected, missing or mis-shaped key fails here."""
    from mmdg.convert.codino import codino_soma_to_mmdg
    manifest = official_manifest('soma_dgod_manifest.json')
    released = {k: torch.empty(shape, device='meta') for k, shape in manifest['released'].items()}
    assert {'query_head.transformer.decoder.ref_point_head.0.weight',
            'query_head.transformer.decoder.ref_point_head.2.weight'} <= set(released)
    model = build_on_meta(Config.fromfile(osp.join(REPO, DET_CONFIG)))
    dinov2 = meta_dinov2(1024, 24, Random(device='meta'))
    state = codino_soma_to_mmdg(dinov2, released, model)
    own = model.state_dict()
    assert list(state) == list(own)
    assert all(state[k].shape == own[k].shape for k in own)


@pytest.mark.parametrize('manifest, crop', [('soma_seg512_manifest.json', 512), ('soma_seg1024_manifest.json', 1024)])
def test_released_segmentation_layout_of_the_official_model_converts_completely(manifest, crop):
    """The released SoMA segmentation files (weights and their EMA), named and shaped as the official model
    and tools/extract_soma_weights.py make them, fill every tensor of mmdg's recipe model, none left over."""
    man = official_manifest(manifest)
    model = build_on_meta(Config.fromfile(default_config(crop)))
    own = model.state_dict()
    dinov2 = meta_dinov2(1024, 24, Random(device='meta'))
    for part in ('released', 'released_ema'):
        soma = {k.replace('module.', '', 1) if part == 'released_ema' else k: torch.empty(s, device='meta')
                for k, s in man[part].items() if k != 'steps'}
        state = soma_to_mmdg(dinov2, soma, model)
        assert list(state) == list(own) and all(state[k].shape == own[k].shape for k in own), part
