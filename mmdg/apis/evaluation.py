"""Evaluation on mmengine's test loop (``Runner.test()``): a checkpoint on a config's test set or on any
of its ``target_datasets``, per domain, with labelled pictures through the config's visualizer.
``tools/test.py``, ``tools/cross_domain_eval.py`` and the demos share it."""
import copy
import os
import os.path as osp
from typing import Dict, List, Optional

from mmengine.config import Config
from mmengine.model import BaseTTAModel, is_model_wrapper

from mmdg.apis.tta import inner_model_cfg
from mmdg.utils.console import build_runner


def bare_model(model):
    """The segmentor / detector inside DDP and TTA wrappers."""
    while is_model_wrapper(model) or isinstance(model, BaseTTAModel):
        model = model.module
    return model


def select_targets(cfg: Config, targets: Optional[List[str]] = None) -> Dict[str, dict]:
    """``{name: dataset config}`` of the config's ``target_datasets`` named in ``targets`` (all when None)."""
    available = dict(cfg.get('target_datasets') or {})
    if not available:
        raise ValueError(f'{cfg.filename or "the config"} defines no target_datasets')
    targets = list(targets or available)
    unknown = [t for t in targets if t not in available]
    if unknown:
        raise ValueError(f'unknown target(s) {unknown}; the config defines {sorted(available)}')
    return {t: available[t] for t in targets}


def domain_test_config(cfg: Config, targets: Optional[List[str]] = None, batch_size: Optional[int] = None) -> Config:
    """Point ``cfg``'s test loader and evaluator at ``targets`` of its ``target_datasets``: one
    ``MultiDomainDataset`` (loader settings: batch size, workers, sampler from the config's
    ``test_dataloader``; ``batch_size`` overrides) scored by the multi-domain metric of the task
    (``MultiDomainIoUMetric`` or ``MultiDomainVOCMetric``, with the config's ``val_evaluator`` settings
    when it is the same metric; its unseen domains narrowed to those evaluated)."""
    domains = select_targets(cfg, targets)
    loader = copy.deepcopy(cfg.get('test_dataloader') or cfg.val_dataloader)
    loader.dataset = dict(type='MultiDomainDataset', domains=domains)
    if batch_size:
        loader.batch_size = batch_size
    if not loader.get('num_workers'):
        loader.persistent_workers = False
    cfg.test_dataloader = loader
    metric = 'MultiDomainVOCMetric' if cfg.get('task') == 'det' else 'MultiDomainIoUMetric'
    evaluator = next((copy.deepcopy(e) for e in (cfg.get('val_evaluator'), cfg.get('test_evaluator'))
                      if isinstance(e, dict) and e.get('type') == metric), dict(type=metric))
    for key in ('mean_over', 'unseen'):  # the means over those of their domains that are evaluated
        evaluator[key] = [d for d in evaluator.get(key) or () if d in domains] or None
    cfg.test_evaluator = evaluator
    cfg.test_cfg = dict(cfg.get('test_cfg') or dict(type='TestLoop'))
    return cfg


def use_amp(cfg: Config) -> Config:
    """Autocast the test loop (mmengine's ``TestLoop(fp16=True)``); a GPU only, as training's ``--amp``."""
    from mmdg.utils.tool_config import require_amp_device
    require_amp_device()
    cfg.test_cfg = dict(cfg.get('test_cfg') or dict(type='TestLoop'), fp16=True)
    return cfg


def build_loaded_runner(cfg: Config, checkpoint: str):
    """The runner of ``cfg`` (quiet console if the config asks for it) with ``checkpoint`` loaded into
    its model through :func:`mmdg.utils.checkpoint.build_and_load`: full, adapter-only and merged
    checkpoints, and an error for one that does not fit (mmengine's ``load_from`` only warns)."""
    from mmdg.utils.checkpoint import build_and_load
    from mmdg.utils.tool_config import unshard
    unshard(cfg)  # a sharded config evaluates unsharded: every process holds the whole model for inference
    runners = []

    def build():
        runners.append(build_runner(cfg))
        return bare_model(runners[0].model)
    build_and_load(inner_model_cfg(cfg), checkpoint, build)
    return runners[0]


def add_visualization(runner, out_dir: Optional[str] = None, max_per_domain: Optional[int] = None,
                      show: bool = False, wait_time: float = 0.):
    """Register a :class:`mmdg.evaluation.DomainVisualizationHook` on ``runner``; returns it."""
    from mmdg.evaluation import DomainVisualizationHook
    hook = DomainVisualizationHook(out_dir=out_dir, max_per_domain=max_per_domain, show=show, wait_time=wait_time)
    runner.register_hook(hook)
    return hook


def domain_results(runner) -> Dict[str, Dict]:
    """Per-domain scores, image counts and per-class values of the runner's last test (empty when its
    evaluator has no multi-domain metric, and on other ranks than the first)."""
    for metric in runner.test_loop.evaluator.metrics:
        if getattr(metric, 'domain_results', None):
            return metric.domain_results
    return {}


def configure_detection_output(cfg, out=None, format_only=False):
    """``--out FILE.pkl``: mmdet's ``DumpDetResults`` beside the metric, as mmdet's ``tools/test.py``."""
    if format_only:
        raise ValueError('--format-only is for segmentation test splits; a detection config scores its test set')
    if out:
        if not out.endswith(('.pkl', '.pickle')):
            raise ValueError(f'--out of a detection config is a .pkl file (the dumped detections), got {out}')
        items = cfg.test_evaluator if isinstance(cfg.test_evaluator, list) else [cfg.test_evaluator]
        cfg.test_evaluator = [*items, dict(type='DumpDetResults', _scope_='mmdet', out_file_path=out)]
    return cfg


def _writers(evaluator):
    items = evaluator if isinstance(evaluator, list) else [evaluator]
    return [e for e in items if e.get('type') == 'SegPredictionWriter']


def configure_prediction_output(cfg, out=None, format_only=False, encoding=None):
    """Point the config's test evaluator at ``out``: a :class:`SegPredictionWriter` beside the metric, or
    alone with ``format_only``. A config whose test evaluator is already a writer (a test split without
    labels) keeps it, with its folder under the work dir unless ``out`` is given."""
    writers = _writers(cfg.test_evaluator)
    if out:
        if osp.isdir(out) and os.listdir(out):
            raise FileExistsError(f'--out {out} is not empty: predictions go into a new or empty folder')
        if not writers:
            items = cfg.test_evaluator if isinstance(cfg.test_evaluator, list) else [cfg.test_evaluator]
            cfg.test_evaluator = [*items, dict(type='SegPredictionWriter')]
            writers = _writers(cfg.test_evaluator)  # the config holds its own copies
    for w in writers:
        w['output_dir'] = out or osp.join(cfg.work_dir, w.get('output_dir', 'format_results'))
        if encoding:
            w['encoding'] = encoding
    if format_only:
        if not writers:
            raise ValueError('--format-only needs --out DIR: where the predictions go')
        cfg.test_evaluator = writers[0] if len(writers) == 1 else writers
    return cfg


def build_test_runner(cfg: Config, checkpoint: str, tta: bool = False, amp: bool = False, console_args=None):
    """What ``tools/test.py`` and the cross-domain evaluation do before testing: the official multi-scale +
    flip TTA, autocast, the console switches, then :func:`build_loaded_runner`."""
    from mmdg.apis.tta import apply_tta
    from mmdg.utils.console import apply_console_args
    if tta:
        apply_tta(cfg)
    if amp:
        use_amp(cfg)
    if console_args is not None:
        apply_console_args(cfg, console_args)
    return build_loaded_runner(cfg, checkpoint)


def prediction_writers(runner) -> list:
    """The ``SegPredictionWriter`` metrics of a runner's test evaluator (what ``--out`` or a config added)."""
    from mmdg.evaluation.prediction_writer import SegPredictionWriter
    return [m for m in runner.test_loop.evaluator.metrics if isinstance(m, SegPredictionWriter)]
