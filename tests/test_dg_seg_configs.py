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
from mmdg.testing import toy_recipe

CONFIGS = sorted(glob.glob(osp.join(REPO, 'configs', 'dg_seg', '*', '*.py')))


def _name(path):
    return osp.relpath(path, osp.join(REPO, 'configs', 'dg_seg'))


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
              or '-4k_' in path or path.endswith('_fsdp.py'))  # sharded: FSDP2Strategy does not shard an EMA
    assert has_ema != no_ema


@pytest.mark.slow
# the sharded variants are their base configs plus an engine: tests/test_fsdp.py trains one on two processes
@pytest.mark.parametrize('path', [c for c in CONFIGS if not c.endswith('_fsdp.py')], ids=_name)
def test_two_iterations_and_a_multi_domain_evaluation(path, dg_roots, tmp_path):
    from mmengine.runner import Runner
    cfg = toy_recipe(Config.fromfile(path), dg_roots, str(tmp_path))
    runner = Runner.from_cfg(cfg)
    runner.train()
    loss = runner.message_hub.get_scalar('train/loss').current()
    assert math.isfinite(loss)
    if 'clora' in path:
        assert 'train/loss_sade' in runner.message_hub.log_scalars
    if _name(path).split('/')[0] not in ('sora', 'rein'):
        return  # another method on a SoRA recipe: its datasets and metric are the SoRA config's, evaluated there
    metrics = runner.val()
    domains = list(cfg.val_dataloader.dataset.domains)
    for d in domains:
        assert 0 <= metrics[f'{d}/mIoU'] <= 100
    official = cfg.val_evaluator.get('mean_over') or domains  # the protocol's official mean
    assert metrics['mean/mIoU'] == pytest.approx(sum(metrics[f'{d}/mIoU'] for d in official) / len(official), abs=0.02)
