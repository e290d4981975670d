"""The end-to-end demo: generate data, train on the source style, evaluate on every style."""
from __future__ import annotations

import json
import os.path as osp
import time
from typing import Dict, Optional

from mmengine.config import Config

from mmdg.adapters import ADAPTERS
from mmdg.apis.evaluation import add_visualization, bare_model, domain_results, domain_test_config
from mmdg.datasets.synthetic import write_cityscapes_layout
from mmdg.evaluation import domain_table
from mmdg.utils.atomic import atomic_open
from mmdg.utils.console import add_vis_backend, build_runner

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
#: ``configs/demo/<method>.py``: the tuning methods on the pre-trained demo backbone, then ``scratch`` (the
#: same ViT from random weights, fully trained: the baseline that shows what pre-training buys).
#: Read from the adapter registry (one list of methods): SoRA first, the two baselines, every other method.
METHODS = ('sora', 'full', 'frozen', *(name.lower() for name in ADAPTERS if name != 'SoRA'), 'scratch')
DEFAULT_DATA_ROOT = 'data/demo'


def _retarget(node, old: str, new: str):
    """Replace the ``old`` data-root prefix by ``new`` in every ``data_root`` of a config."""
    if isinstance(node, dict):
        for k, v in node.items():
            if k == 'data_root' and isinstance(v, str) and v.startswith(old):
                node[k] = new + v[len(old):]
            else:
                _retarget(v, old, new)
    elif isinstance(node, (list, tuple)):
        for v in node:
            _retarget(v, old, new)


def demo_config(method: str, data_root: str = DEFAULT_DATA_ROOT, work_dir: Optional[str] = None,
                max_iters: Optional[int] = None, pretrained: Optional[str] = None,
                num_workers: Optional[int] = None, seed: Optional[int] = None) -> Config:
    if method not in METHODS:
        raise ValueError(f'unknown demo method {method!r}; choose from {", ".join(METHODS)}')
    cfg = Config.fromfile(osp.join(REPO, 'configs', 'demo', f'{method}.py'))
    return adjust_demo_config(cfg, DEFAULT_DATA_ROOT, data_root, work_dir or osp.join('work_dirs', 'demo', method),
                              max_iters, pretrained, num_workers, seed)


def adjust_demo_config(cfg: Config, default_root: str, data_root: str, work_dir: str, max_iters: Optional[int],
                       pretrained: Optional[str], num_workers: Optional[int], seed: Optional[int] = None) -> Config:
    """Point a demo config (segmentation or detection) at ``data_root`` and ``work_dir``, stretch its
    schedule to ``max_iters``, set the backbone's ``pretrained`` file (``'none'``: random weights), the
    loaders' workers and the seed."""
    _retarget(cfg._cfg_dict, default_root, data_root)
    cfg.work_dir = work_dir
    if max_iters is not None:  # stretch the schedule (warm-up, decay) to the new length
        old = cfg.train_cfg.max_iters
        for s in cfg.param_scheduler:
            s.begin = s.begin * max_iters // old
            s.end = max(s.end * max_iters // old, s.begin + 1)
        cfg.train_cfg.max_iters = cfg.train_cfg.val_interval = max_iters
        cfg.default_hooks.checkpoint.interval = max_iters
    if pretrained:
        cfg.model.backbone.pretrained = None if pretrained.lower() == 'none' else pretrained
    if seed is not None:
        cfg.randomness = dict(cfg.get('randomness') or {}, seed=seed)
    if num_workers is not None:
        for key in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
            cfg[key].num_workers = num_workers
            cfg[key].persistent_workers = num_workers > 0
    return cfg


def trainable_parameters(model) -> Dict[str, int]:
    """Trainable parameters of a segmentor / detector: its backbone's and in all (shared ones once)."""
    model = bare_model(model)
    count = lambda m: sum(p.numel() for p in m.parameters() if p.requires_grad)  # noqa: E731
    return dict(backbone=count(model.backbone), total=count(model))


def run_demo(method: str = 'sora', data_root: str = DEFAULT_DATA_ROOT, work_dir: Optional[str] = None,
             max_iters: Optional[int] = None, pretrained: Optional[str] = None, num_train: int = 200,
             num_val: int = 50, num_workers: Optional[int] = None, evaluate_untrained: bool = False,
             num_overlays: int = 2, vis_backends=(), quiet: bool = True, seed: Optional[int] = None) -> Dict:
    """Returns ``dict(trained=..., untrained=... or None, table=str, work_dir=str, log_file=str,
    seconds=float, parameters=dict(backbone=int, total=int))``.
    Scores come from the runner's test loop over every style (``Runner.test()``); ``quiet`` keeps the
    config and per-parameter lines in the log file, off the console."""
    t0 = time.time()
    write_cityscapes_layout(data_root, splits=dict(train=num_train, val=num_val))
    cfg = demo_config(method, data_root, work_dir, max_iters, pretrained, num_workers, seed)
    # the test run below scores every style (with per-class IoU and pictures); the runner's own
    # end-of-training validation over the same images would only repeat it (mmengine validates at the last
    # iteration whatever val_interval says, so the loop's validation is moved past the end)
    cfg.train_cfg.val_begin = cfg.train_cfg.max_iters + 1
    domain_test_config(cfg)
    for name in vis_backends:
        add_vis_backend(cfg, name)
    runner = build_runner(cfg, quiet=quiet)
    parameters = trainable_parameters(runner.model)
    untrained = None
    if evaluate_untrained:
        runner.test()
        untrained = domain_results(runner)
    runner.train()
    if num_overlays:
        add_visualization(runner, osp.join(cfg.work_dir, 'overlays'), max_per_domain=num_overlays)
    runner.test()
    trained = domain_results(runner)
    unseen = [n for n in trained if n != 'source']
    table = domain_table(trained, unseen=unseen)
    with atomic_open(osp.join(cfg.work_dir, 'results.json'), 'w') as f:
        json.dump(dict(method=method, seed=cfg.randomness.get('seed'), pretrained=cfg.model.backbone.pretrained,
                       parameters=parameters, trained=trained, untrained=untrained, seconds=time.time() - t0),
                  f, indent=1)
    with atomic_open(osp.join(cfg.work_dir, 'results.md'), 'w') as f:
        f.write(table + '\n')
    return dict(trained=trained, untrained=untrained, table=table, work_dir=cfg.work_dir,
                log_file=osp.join(runner.log_dir, f'{runner.timestamp}.log'), seconds=time.time() - t0,
                parameters=parameters)
