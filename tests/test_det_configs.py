"""Every DG detection config: parsed, its full-size backbone built (on the meta device), and, shrunk to tiny
inputs with the same structure (method, frozen blocks, detector, datasets, pipelines, schedule), two training
iterations and one multi-domain evaluation on generated VOC data (domain folders in several spellings)."""
import copy
import glob
import math
import os.path as osp

import pytest
import torch
from mmengine.config import Config

from conftest import REPO
from mmdg.testing import toy_recipe

CONFIGS = sorted(glob.glob(osp.join(REPO, 'configs', 'dg_det', '*', '*.py')))


@pytest.fixture(autouse=True)
def _plain_config_text(monkeypatch):
    """The runner logs and dumps its config through yapf (~6 s per call here, three calls per runner);
    these tests never read that text, so they get the plain dict repr instead."""
    monkeypatch.setattr(Config, 'pretty_text', property(lambda self: repr(self._cfg_dict.to_dict())))


def _name(path):
    return osp.relpath(path, osp.join(REPO, 'configs', 'dg_det'))


def test_the_grid_is_complete():
    names = {_name(c) for c in CONFIGS}
    for method in ('sora', 'lora', 'full', 'frozen'):
        assert f'{method}/{method}_dinov2-l_codino_4xb2-40k_dwd-1024.py' in names  # the published detector
        assert f'{method}/{method}_dinov2-l_dino_4xb2-40k_dwd-1024.py' in names  # the lighter DETR variant
    assert 'sora/sora_dinov2-l_faster-rcnn_4xb2-40k_dwd-1024.py' in names
    assert 'sora/sora_dinov2-l_codino_4xb2-40k_cityscapes-to-foggy-1024.py' in names
    assert 'sora/sora_dinov2-l_dino_4xb2-40k_cityscapes-to-foggy-1024.py' in names
    doc = open(osp.join(REPO, 'docs', 'detection.md')).read()
    missing = [n for n in names if n not in doc]
    assert not missing, f'docs/detection.md does not list {missing}'


#: SoRA's trainable backbone parameters on DINOv2-L (the same as for segmentation: same layers, blocks, r).
SORA_DINOV2_L = 4_866_048


@pytest.mark.parametrize('path', CONFIGS, ids=_name)
def test_full_size_config(path):
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
    expected = dict(frozen=lambda n: n == 0, full=lambda n: n > 200e6, sora=lambda n: n == SORA_DINOV2_L,
                    lora=lambda n: 0 < n < 10e6)
    assert expected[method](trainable), f'{method}: {trainable} trainable backbone parameters'
    # the published detection recipe (docs/parity.md compares every value)
    assert cfg.train_cfg.max_iters == 40000
    opt = cfg.optim_wrapper
    assert opt.optimizer.type == 'AdamW' and opt.optimizer.lr == 2e-4 and opt.clip_grad.max_norm == 35
    assert opt.optimizer.weight_decay == 0.05
    backbone_key = opt.paramwise_cfg.custom_keys.backbone
    assert backbone_key.lr_mult == 0.5
    assert opt.optimizer.weight_decay * backbone_key.decay_mult == pytest.approx(0.01)
    assert [s.type for s in cfg.param_scheduler] == ['LinearLR', 'MultiStepLR', 'AnnealedWeightDecay']
    step = cfg.param_scheduler[1]
    assert [step.begin + m for m in step.milestones] == [25500, 33500]
    assert any(t.get('type') == 'mmdet.RandomCrop' and tuple(t.crop_size) == (1024, 1024)
               and t.crop_type == 'absolute_range' for t in cfg.train_dataloader.dataset.pipeline)
    assert cfg.train_dataloader.dataset.filter_cfg.filter_empty_gt is False
    assert cfg.val_evaluator.type == 'MultiDomainVOCMetric' and cfg.val_evaluator.eval_mode == '11points'
    classes = 8 if 'cityscapes' in path else 7
    head = cfg.model.bbox_head if cfg.model.type in ('DINO', 'CoDINO') else cfg.model.roi_head.bbox_head
    assert head.num_classes == classes
    if cfg.model.type == 'CoDINO':  # Co-DINO 5-scale: blocks 7/11/15/23 at strides 4-32 + a stride-64 level
        assert tuple(cfg.model.backbone.out_indices) == (7, 11, 15, 23) and cfg.model.neck.num_outs == 5
        assert cfg.model.num_queries == 900 and cfg.model.test_cfg.nms.type == 'soft_nms'


@pytest.mark.slow
@pytest.mark.parametrize('path', CONFIGS, ids=_name)
def test_two_iterations_and_a_multi_domain_evaluation(path, det_roots, tmp_path):
    from mmengine.runner import Runner
    cfg = toy_recipe(Config.fromfile(path), det_roots, str(tmp_path))
    runner = Runner.from_cfg(cfg)
    runner.train()
    assert math.isfinite(runner.message_hub.get_scalar('train/loss').current())
    metrics = runner.val()
    domains = list(cfg.val_dataloader.dataset.domains)
    for d in domains:
        assert 0 <= metrics[f'{d}/mAP'] <= 100
    # mean/mAP: every evaluated domain (the official Diverse Weather mean, Daytime-Clear included);
    # mean_unseen/mAP: mmdg's own mean over the unseen ones, under its own name
    assert not cfg.val_evaluator.get('mean_over')
    assert metrics['mean/mAP'] == pytest.approx(sum(metrics[f'{d}/mAP'] for d in domains) / len(domains))
    unseen = cfg.val_evaluator.get('unseen') or []
    if 0 < len(unseen) < len(domains):
        assert metrics['mean_unseen/mAP'] == pytest.approx(sum(metrics[f'{d}/mAP'] for d in unseen) / len(unseen))
    else:
        assert 'mean_unseen/mAP' not in metrics
    # DWD: Daytime-Clear's test image, the 2 train-list images of each other domain (the official lists);
    # Cityscapes: 1 + 1 val
    assert len(runner.val_dataloader.dataset) == (2 if 'cityscapes' in path else 1 + 4 * 2)


def _parity():
    from mmdg.utils import parity
    return parity


CODINO_SORA = 'sora/sora_dinov2-l_codino_4xb2-40k_dwd-1024.py'


@pytest.mark.parametrize('setting, change', [
    # the model config, every value its own row (read from the official file)
    ('test_cfg.0.nms.iou_threshold', lambda c: c.model.test_cfg.nms.update(iou_threshold=0.5)),
    ('bbox_head.0.loss_cls.loss_weight', lambda c: c.model.aux_bbox_head[0].loss_cls.update(loss_weight=1.0)),
    ('bbox_head.0.loss_bbox.loss_weight', lambda c: c.model.aux_bbox_head[0].loss_bbox.update(loss_weight=12.0)),
    ('roi_head.0.bbox_head.loss_bbox.loss_weight',
     lambda c: c.model.roi_head[0].bbox_head.loss_bbox.update(loss_weight=10.0)),
    ('rpn_head.loss_bbox.loss_weight', lambda c: c.model.rpn_head.loss_bbox.update(loss_weight=1.0)),
    ('query_head.loss_cls.type', lambda c: c.model.bbox_head.update(loss_cls=dict(type='FocalLoss'))),
    ('query_head.loss_iou.loss_weight', lambda c: c.model.bbox_head.loss_iou.update(loss_weight=1.0)),
    ('train_cfg.0.assigner.match_costs.1.weight', lambda c: c.model.train_cfg.assigner.match_costs[1].update(weight=2.0)),
    ('query_head.dn_cfg.box_noise_scale', lambda c: c.model.dn_cfg.update(box_noise_scale=0.4)),
    ('query_head.num_query', lambda c: c.model.update(num_queries=300)),
    # the official code's settings that its config does not spell out
    ('head: inverse_sigmoid eps of the reference points', lambda c: c.model.bbox_head.update(reference_eps=1e-5)),
    ('head: sync_cls_avg_factor', lambda c: c.model.bbox_head.update(sync_cls_avg_factor=True)),
    ('transformer initialisation', lambda c: c.model.update(transformer_init='mmdet')),
    ('checkpoints', lambda c: c.default_hooks.checkpoint.update(max_keep_ckpts=3)),
    ('mean/mAP over', lambda c: c.val_evaluator.update(mean_over=['night_rainy'])),
    ('lr schedule', lambda c: c.param_scheduler[1].update(milestones=[25500, 33500])),
    ('train crop', lambda c: c.train_dataloader.dataset.pipeline[3].update(crop_type='absolute')),
    ('images without boxes', lambda c: c.train_dataloader.dataset.filter_cfg.update(filter_empty_gt=True)),
    ('validation targets', lambda c: c.val_dataloader.dataset.domains.night_rainy.update(split='all')),
    ('backbone weight decay', lambda c: c.optim_wrapper.paramwise_cfg.custom_keys.backbone.update(decay_mult=1.0)),
])
def test_a_drifting_detection_value_is_caught(setting, change):
    """docs/parity.md's detection rows: a value that leaves the published recipe is reported (and the
    generated table changes, so `tools/parity.py --check` fails until the doc is regenerated)."""
    parity = _parity()
    cfg = Config.fromfile(osp.join(REPO, 'configs', 'dg_det', CODINO_SORA), import_custom_modules=False)
    assert not parity.det_undocumented({CODINO_SORA: cfg})
    drifted = copy.deepcopy(cfg)
    change(drifted)
    problems = parity.det_undocumented({CODINO_SORA: drifted})
    assert any(f': {setting}: ' in p or f': {setting} (mmdg: ' in p for p in problems), problems
    assert parity.det_render({CODINO_SORA: drifted}) != parity.det_render({CODINO_SORA: cfg})


def test_parity_doc_lists_every_detection_config():
    parity = _parity()
    text = open(osp.join(REPO, 'docs', 'parity.md')).read()
    assert text.endswith(parity.det_render(parity.det_load_all()))


@pytest.mark.parametrize('path', CONFIGS, ids=_name)
def test_the_name_says_gpus_and_batch(path):
    """As mmdet's and the segmentation configs' names: ``<gpus>xb<batch per gpu>``, agreeing with the config's
    per-GPU batch and the total batch its learning rate is set for (auto_scale_lr.base_batch_size)."""
    import re
    m = re.search(r'_(\d+)xb(\d+)-', osp.basename(path))
    assert m, osp.basename(path)
    cfg = Config.fromfile(path)
    gpus, batch = int(m.group(1)), int(m.group(2))
    assert cfg.train_dataloader.batch_size == batch and gpus * batch == cfg.auto_scale_lr.base_batch_size
