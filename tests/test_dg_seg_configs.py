"""Every DG segmentation config: parsed, its full-size backbone built (on the meta device), and, shrunk
to tiny inputs with the same structure (method, frozen blocks, Mask2Former head, datasets, pipelines,
schedule, EMA), two training iterations and one multi-domain evaluation on generated data."""
import copy
import glob
import math
import os.path as osp

import pytest
import torch
from mmengine.config import Config

from conftest import REPO

CONFIGS = sorted(glob.glob(osp.join(REPO, 'configs', 'dg_seg', '*', '*.py')))
SOURCES = dict(GTA5Dataset='gta5', SYNTHIADataset='synthia', UrbanSynDataset='urbansyn', CityscapesDGDataset='cityscapes',
               BDD100KDGDataset='bdd100k', MapillaryCS19Dataset='mapillary', ACDCDataset='acdc')


def _name(path):
    return osp.relpath(path, osp.join(REPO, 'configs', 'dg_seg'))


@pytest.fixture(scope='module')
def dg_roots(tmp_path_factory):
    """Every dataset in its raw public layout (2 tiny samples per split), labels converted."""
    from mmdg.datasets.converters import conversion_pairs, convert
    from mmdg.datasets.synthetic_layouts import write_raw_layout
    base = tmp_path_factory.mktemp('dg_data')
    roots = {}
    for name, splits in dict(gta5=['train'], synthia=['train'], urbansyn=['train'], cityscapes=['train', 'val'],
                             bdd100k=['val'], mapillary=['val'], acdc=['val', 'test']).items():
        root = str(base / name)
        for split in splits:
            write_raw_layout(name, root, n=2, split=split, size=(64, 96), conditions=('fog', 'night', 'rain', 'snow'))
        if name in ('gta5', 'synthia', 'urbansyn', 'cityscapes', 'mapillary'):
            images, pairs = conversion_pairs(name, root)
            convert(pairs, name, images, nproc=1, progress=False)
        if name == 'mapillary':  # the recipes score Mapillary on its half-resolution validation copy
            from mmdg.datasets.converters import make_mapillary_half_val
            make_mapillary_half_val(root, nproc=1, progress=False)
        roots[name] = root
    # the data-efficiency configs read an image list of Cityscapes train (here: all of them)
    from importlib import util
    spec = util.spec_from_file_location('subset', osp.join(REPO, 'tools', 'dataset_converters', 'cityscapes_subset.py'))
    subset = util.module_from_spec(spec)
    spec.loader.exec_module(subset)
    assert subset.main([roots['cityscapes'], '--fraction', '1', '--out',
                        osp.join(roots['cityscapes'], 'splits', 'cityscapes_train_1of16.txt')]) is None
    return roots


def _walk(node, fn):
    if isinstance(node, dict):
        fn(node)
        for v in node.values():
            _walk(v, fn)
    elif isinstance(node, (list, tuple)):
        for v in node:
            _walk(v, fn)


def shrink(cfg: Config, roots: dict, work_dir: str) -> Config:
    """The config's structure at toy size: a 4-block ViT of width 64 (same arch family, method, frozen
    prefix scaled from 8/24 to 1/4), a narrow Mask2Former, 64 px crops, data from ``roots``."""
    cfg = copy.deepcopy(cfg)
    bb = cfg.model.backbone
    bb.update(img_size=64, out_indices=(0, 1, 2, 3), pretrained=None,
              frozen_blocks=min(bb.get('frozen_blocks', 0), 1),
              model_kwargs=dict(embed_dim=64, depth=4, num_heads=2))
    if bb.get('adapter'):  # the block range scaled like the frozen prefix (all blocks stay all blocks)
        bb.adapter.blocks = (1, 4) if bb.adapter.get('blocks') else None
    head = cfg.model.decode_head
    head.update(in_channels=[64] * 4, feat_channels=32, out_channels=32, num_queries=8)
    if bb.get('adapter', {}).get('type') == 'Rein':  # its tokens are the head's queries
        bb.adapter.update(token_length=head.num_queries, query_dim=head.feat_channels)
    pd = head.pixel_decoder
    pd.encoder.num_layers = 1
    pd.encoder.layer_cfg.self_attn_cfg.update(embed_dims=32, num_heads=2)
    pd.encoder.layer_cfg.ffn_cfg.update(embed_dims=32, feedforward_channels=64)
    pd.positional_encoding.num_feats = 16
    head.positional_encoding.num_feats = 16
    td = head.transformer_decoder
    td.num_layers = 3
    td.layer_cfg.self_attn_cfg.update(embed_dims=32, num_heads=2)
    td.layer_cfg.cross_attn_cfg.update(embed_dims=32, num_heads=2)
    td.layer_cfg.ffn_cfg.update(embed_dims=32, feedforward_channels=64)
    head.train_cfg.num_points = 256
    cfg.model.data_preprocessor.size = (64, 64)
    cfg.model.test_cfg.update(crop_size=(64, 64), stride=(43, 43))

    def retarget(d):
        if d.get('type') in SOURCES:
            d['data_root'] = roots.get(SOURCES[d['type']], d.get('data_root'))
        if d.get('type') == 'RandomResize':
            d['scale'] = (96, 64)
        if d.get('type') == 'RandomChoiceResize':
            d.update(scales=[64, 80], max_size=160)
        if d.get('type') == 'RandomCrop':
            d['crop_size'] = (64, 64)
        if d.get('type') == 'Resize':
            d['scale'] = (96, 64)
    for key in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        _walk(cfg[key], retarget)
        cfg[key].update(batch_size=2, num_workers=0, persistent_workers=False)
    cfg.train_cfg.update(max_iters=2, val_interval=100)
    for s in cfg.param_scheduler:  # the same phases (warm-up, then decay) over 2 iterations
        s.begin, s.end = (0, 1) if s.type == 'LinearLR' else (min(s.begin, 1), 2)
    cfg.default_hooks.checkpoint.update(interval=100, save_best=None)
    cfg.default_hooks.logger.interval = 1
    cfg.work_dir = work_dir
    cfg.load_from = None  # the data-efficiency config starts from a trained model: not here
    for h in cfg.custom_hooks:
        if h.type == 'EMAHook':
            h.begin_iter = 1  # EMA starts within the two iterations, as it does at 12k / 16k / 20k of 40k
    return cfg


def test_the_grid_is_complete():
    names = {_name(c) for c in CONFIGS}
    for method in ('sora', 'lora', 'pissa', 'alore', 'hta', 'clora', 'full', 'frozen'):
        for backbone in ('dinov2-l', 'eva02-l'):
            assert f'{method}/{method}_{backbone}_mask2former_1xb4-40k_gta5-to-cbm-512x512.py' in names
    for proto in ('1xb4-40k_gta5+synthia-to-cbm-512x512', '1xb8-40k_cityscapes-to-bm-512x512',
                  '4xb2-40k_cityscapes-to-acdc-512x512', '4xb2-40k_cityscapes-to-acdc-1024x1024',
                  '1xb4-40k_gta5+synthia+urbansyn-to-cbm-512x512', '1xb4-40k_gta5+synthia+urbansyn-to-cbm-1024x1024',
                  '1xb4-4k_gta5+synthia+urbansyn-then-cityscapes-1of16-to-cbm-1024x1024'):
        assert f'sora/sora_dinov2-l_mask2former_{proto}.py' in names
    zoo = open(osp.join(REPO, 'docs', 'model_zoo.md')).read()
    missing = [n for n in names if n not in zoo]
    assert not missing, f'docs/model_zoo.md does not list {missing}'


#: Trainable backbone parameters at full size, from the papers (SoRA, Rein) or counted here (the rest: the
#: test catches a config whose method or block range drifts).
SORA_DINOV2_L = 4_866_048
REIN_DINOV2_L = 2_990_081


@pytest.mark.parametrize('path', CONFIGS, ids=_name)
def test_full_size_backbone(path):
    from mmengine.registry import init_default_scope
    init_default_scope('mmdg')
    from mmdg.registry import MODELS
    cfg = Config.fromfile(path)
    bb = copy.deepcopy(cfg.model.backbone)
    assert bb.pretrained and bb.pretrained.startswith('checkpoints/')  # a local file, never a download
    bb.pretrained = None
    with torch.device('meta'):
        backbone = MODELS.build(bb)
    trainable = sum(p.numel() for p in backbone.parameters() if p.requires_grad)
    method = _name(path).split('/')[0]
    # the official full fine-tuning trains every block (norms, layer scales, embeddings fixed); every
    # other method keeps blocks 0-7 and the embeddings frozen
    frozen_prefix = [n for n, p in backbone.vit.named_parameters()
                     if p.requires_grad and (n.startswith(('patch_embed', 'pos_embed'))
                                             or (method != 'full' and n.startswith('cls_token'))
                                             or (method == 'full' and any(k in n for k in ('norm1', 'norm2', 'ls1', 'ls2')))
                                             or (method not in ('full', 'rein') and n.startswith('blocks.')
                                                 and int(n.split('.')[1]) < 8))]
    assert not frozen_prefix, f'these must be frozen, trainable: {frozen_prefix[:3]}'
    if method == 'full':
        assert backbone.vit.blocks[0].attn.proj.weight.requires_grad
    if method == 'frozen':
        assert trainable == 0
    elif method == 'full':
        assert trainable > 200e6
    else:  # a small part of the backbone (SoRA on DINOv2-L: 1.6 %; on DINOv3-7B: 0.5 %)
        assert 0 < trainable < 0.025 * sum(p.numel() for p in backbone.parameters())
    if method == 'sora' and bb.arch == 'dinov2-l':
        assert trainable == SORA_DINOV2_L
    if method == 'rein':  # Rein refines every block; the paper's 2.99 M on DINOv2-L
        assert backbone.vit.blocks[0].__class__.__name__ != 'Block'
        if bb.arch == 'dinov2-l':
            assert trainable == REIN_DINOV2_L
    if cfg.model.decode_head.type == 'Mask2FormerHead':
        assert cfg.model.decode_head.num_queries == 100
        assert cfg.train_cfg.max_iters == (4000 if '-4k_' in path else 40000)
    # EMA as the official recipes: none for the baselines, GTA5 + SYNTHIA (+ UrbanSyn at 512), data efficiency
    has_ema = any(h.type == 'EMAHook' for h in cfg.custom_hooks)
    no_ema = (method in ('full', 'frozen', 'rein') or 'synthia-to-cbm' in path or 'urbansyn-to-cbm-512' in path
              or '-4k_' in path)
    assert has_ema != no_ema


@pytest.mark.parametrize('path', CONFIGS, ids=_name)
def test_two_iterations_and_a_multi_domain_evaluation(path, dg_roots, tmp_path):
    from mmengine.runner import Runner
    cfg = shrink(Config.fromfile(path), dg_roots, str(tmp_path))
    runner = Runner.from_cfg(cfg)
    runner.train()
    loss = runner.message_hub.get_scalar('train/loss').current()
    assert math.isfinite(loss)
    if 'clora' in path:
        assert 'train/loss_sade' in runner.message_hub.log_scalars
    metrics = runner.val()
    domains = list(cfg.val_dataloader.dataset.domains)
    for d in domains:
        assert 0 <= metrics[f'{d}/mIoU'] <= 100
    official = cfg.val_evaluator.get('mean_over') or domains  # the protocol's official mean
    assert metrics['mean/mIoU'] == pytest.approx(sum(metrics[f'{d}/mIoU'] for d in official) / len(official), abs=0.02)
