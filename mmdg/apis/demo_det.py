"""The detection demo: write the procedural scenes as a DWD-style VOC dataset, train Faster R-CNN on the
tiny ViT on the source style, and report VOC mAP@0.5 (11-point) on every style."""
from __future__ import annotations

import json
import os.path as osp
import time
from typing import Dict, Optional

from mmengine.config import Config

from mmdg.apis.demo import METHODS, REPO, adjust_demo_config
from mmdg.apis.evaluation import add_visualization, domain_results, domain_test_config
from mmdg.datasets.voc_writer import write_synthetic_voc
from mmdg.evaluation import domain_table, per_class_table
from mmdg.utils.atomic import atomic_open
from mmdg.utils.console import add_vis_backend, build_runner

DEFAULT_DATA_ROOT = 'data/demo_det'
CONFIG = osp.join(REPO, 'configs', 'demo_det', 'faster-rcnn_vit-tiny.py')
#: Boxes whose shorter side is below this many pixels are marked difficult (out of training and AP).
DIFFICULT_BELOW = 4


#: What a method changes in the backbone, in configs/demo/<method>.py (the pre-trained weights included).
BACKBONE_SWITCHES = ('adapter', 'freeze', 'frozen_blocks', 'frozen_params', 'pretrained')


def method_switches(method: str) -> Dict:
    """The backbone switches of a method (adapter, frozen parts, weights) and its backbone lr multiplier,
    from the segmentation demo's ``configs/demo/<method>.py``: one definition of each method for both demos."""
    if method not in METHODS:
        raise ValueError(f'unknown demo method {method!r}; choose from {", ".join(METHODS)}')
    cfg = Config.fromfile(osp.join(REPO, 'configs', 'demo', f'{method}.py'))
    backbone = {k: cfg.model.backbone[k] for k in BACKBONE_SWITCHES if k in cfg.model.backbone}
    return dict(backbone=backbone, lr_mult=cfg.optim_wrapper.paramwise_cfg.custom_keys.backbone.lr_mult)


def demo_det_config(method: str = 'full', data_root: str = DEFAULT_DATA_ROOT, work_dir: Optional[str] = None,
                    max_iters: Optional[int] = None, pretrained: Optional[str] = None,
                    num_workers: Optional[int] = None) -> Config:
    cfg = Config.fromfile(CONFIG)
    switches = method_switches(method)
    cfg.model.backbone.update(switches['backbone'])
    cfg.optim_wrapper.paramwise_cfg.setdefault('custom_keys', {})['backbone'] = dict(lr_mult=switches['lr_mult'])
    return adjust_demo_config(cfg, DEFAULT_DATA_ROOT, data_root,
                              work_dir or osp.join('work_dirs', 'demo_det', method), max_iters, pretrained,
                              num_workers)


def run_demo_det(method: str = 'full', data_root: str = DEFAULT_DATA_ROOT, work_dir: Optional[str] = None,
                 max_iters: Optional[int] = None, pretrained: Optional[str] = None, num_train: int = 200,
                 num_val: int = 50, num_workers: Optional[int] = None, num_overlays: int = 2, vis_backends=(),
                 quiet: bool = True) -> Dict:
    """Returns ``dict(results=..., table=str, per_class=str, work_dir=str, log_file=str, seconds=float)``.
    Scores come from the runner's test loop over every style (``Runner.test()``)."""
    t0 = time.time()
    write_synthetic_voc(data_root, splits=dict(train=num_train, test=num_val), difficult_below=DIFFICULT_BELOW)
    cfg = demo_det_config(method, data_root, work_dir, max_iters, pretrained, num_workers)
    # the test run below scores every style (with per-class AP); the runner's own end-of-training
    # validation over the same images would only repeat it (mmengine validates at the last iteration
    # whatever val_interval says, so the loop's validation is moved past the end)
    cfg.train_cfg.val_begin = cfg.train_cfg.max_iters + 1
    domain_test_config(cfg)
    for name in vis_backends:
        add_vis_backend(cfg, name)
    runner = build_runner(cfg, quiet=quiet)
    runner.train()
    if num_overlays:
        add_visualization(runner, osp.join(cfg.work_dir, 'overlays'), max_per_domain=num_overlays)
    runner.test()
    results = domain_results(runner)
    table = domain_table(results, unseen=[n for n in results if n != 'source'], scores=('mAP',),
                         titles=('mAP@0.5',))
    per_class = per_class_table(results)
    seconds = time.time() - t0
    with atomic_open(osp.join(cfg.work_dir, 'results.json'), 'w') as f:
        json.dump(dict(method=method, results=results, seconds=seconds), f, indent=1)
    with atomic_open(osp.join(cfg.work_dir, 'results.md'), 'w') as f:
        f.write(f'{table}\n\n## Per-class AP@0.5\n\n{per_class}\n')
    return dict(results=results, table=table, per_class=per_class, work_dir=cfg.work_dir,
                log_file=osp.join(runner.log_dir, f'{runner.timestamp}.log'), seconds=seconds)
