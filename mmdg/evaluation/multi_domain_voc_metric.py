"""VOC mAP per domain in one validation run over a :class:`mmdg.datasets.MultiDomainDataset` of detection
datasets (Diverse Weather: mAP@0.5, 11-point interpolation, METHODS.md §7)."""
from collections import defaultdict
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
from mmdet.evaluation import VOCMetric, eval_map
from mmengine.logging import MMLogger, print_log
from mmengine.runner import Runner

from mmdg.registry import METRICS


def voc_ap_per_class(results: Sequence[Tuple[dict, List[np.ndarray]]], iou_thr: float = 0.5,
                     eval_mode: str = '11points', nproc: int = 4) -> Tuple[float, np.ndarray]:
    """mmdet's ``eval_map`` on ``VOCMetric``'s ``(annotation, per-class detections)`` results, in the VOC
    conventions (legacy ``+1`` box sizes). Returns ``(mAP, per-class AP)`` in percent; a class without
    ground truth has AP NaN and is left out of the mean."""
    anns, dets = zip(*results)
    mean_ap, per_class = eval_map(list(dets), list(anns), iou_thr=iou_thr, eval_mode=eval_mode, logger='silent',
                                  use_legacy_coordinate=True, nproc=nproc)
    ap = np.array([r['ap'] * 100 if r['num_gts'] > 0 else np.nan for r in per_class], dtype=np.float64)
    return float(mean_ap) * 100, ap


@METRICS.register_module()
class MultiDomainVOCMetric(VOCMetric):
    """mmdet's ``VOCMetric`` (mAP at ``iou_thrs``, ``eval_mode='11points'``) computed separately for each
    ``data_sample.domain``. Returns ``<domain>/mAP`` for every domain and ``mean/mAP`` (their mean, or the
    mean over ``mean_over``), in percent; the per-class AP of every domain is logged as a table. Samples
    without a domain tag count as ``'default'``. ``nproc``: processes of ``eval_map``."""
    default_prefix = None  # keys as the segmentation metric's: '<domain>/mAP', 'mean/mAP'

    def __init__(self, mean_over: Sequence[str] = None, iou_thrs: float = 0.5, nproc: int = 4, **kwargs):
        if not isinstance(iou_thrs, float):
            raise ValueError(f'MultiDomainVOCMetric takes one IoU threshold, got {iou_thrs}')
        kwargs.setdefault('eval_mode', '11points')
        super().__init__(iou_thrs=iou_thrs, metric='mAP', **kwargs)
        self.mean_over = list(mean_over) if mean_over else None
        self.nproc = nproc

    def process(self, data_batch: dict, data_samples: Sequence[dict]) -> None:
        start = len(self.results)
        super().process(data_batch, data_samples)  # one (ann, dets) per sample, in order
        for i, sample in enumerate(data_samples):
            self.results[start + i] = (sample.get('domain', 'default'), self.results[start + i])

    def compute_metrics(self, results: list) -> Dict[str, float]:
        by_domain = defaultdict(list)
        for domain, res in results:
            by_domain[domain].append(res)
        classes = self.dataset_meta['classes']
        metrics, rows = {}, []
        for domain, res in by_domain.items():
            mean_ap, ap = voc_ap_per_class(res, self.iou_thrs[0], self.eval_mode, self.nproc)
            metrics[f'{domain}/mAP'] = mean_ap
            rows.append(f'{domain:>14s} | {mean_ap:6.2f} | ' + ' '.join('   -  ' if v != v else f'{v:6.2f}' for v in ap))
        names = [d for d in (self.mean_over or by_domain) if d in by_domain]
        metrics['mean/mAP'] = float(np.mean([metrics[f'{d}/mAP'] for d in names])) if names else float('nan')
        header = f'{"domain":>14s} | {"mAP":>6s} | ' + ' '.join(f'{c[:6]:>6s}' for c in classes)
        print_log(f'AP@{self.iou_thrs[0]} ({self.eval_mode}) by domain and class:\n' + '\n'.join([header, *rows]),
                  logger=MMLogger.get_current_instance())
        return metrics


@torch.no_grad()
def evaluate_det_domains(model, targets: Dict[str, Dict], batch_size: int = 4, num_workers: int = 0,
                         progress: bool = True, nproc: int = 1) -> Dict[str, Dict]:
    """Run ``model`` (an mmdet detector) over each dataset config in ``targets``. Returns
    ``{name: dict(mAP=..., per_class={class: AP}, num_images=...)}`` in percent (VOC mAP@0.5, 11-point),
    each domain scored on its own images."""
    model.eval()
    out: Dict[str, Dict] = {}
    for name, ds_cfg in targets.items():
        loader = Runner.build_dataloader(dict(batch_size=batch_size, num_workers=num_workers, dataset=ds_cfg,
                                              sampler=dict(type='DefaultSampler', shuffle=False)))
        metric = VOCMetric()
        metric.dataset_meta = meta = loader.dataset.metainfo
        it = loader
        if progress:
            from tqdm import tqdm
            it = tqdm(loader, desc=f'eval {name}', unit='batch', leave=False)
        for data in it:
            metric.process(data, [s.to_dict() for s in model.test_step(data)])
        mean_ap, ap = voc_ap_per_class(metric.results, nproc=nproc)
        out[name] = dict(mAP=mean_ap, per_class={c: float(v) for c, v in zip(meta['classes'], ap)},
                         num_images=len(loader.dataset))
    return out


def map_table(results: Dict[str, Dict], mean_over: Optional[List[str]] = None) -> str:
    """A markdown table ``domain | mAP@0.5 | images`` with the mean over ``mean_over`` (default: all)."""
    names = list(results)
    mean_over = [n for n in (mean_over or names) if n in results]
    rows = ['| domain | mAP@0.5 | images |', '|---|---:|---:|']
    rows += [f'| {n} | {results[n]["mAP"]:.2f} | {results[n]["num_images"]} |' for n in names]
    if mean_over:
        rows.append(f'| **mean ({", ".join(mean_over)})** | **{np.mean([results[n]["mAP"] for n in mean_over]):.2f}** | |')
    return '\n'.join(rows)


def per_class_ap_table(results: Dict[str, Dict]) -> str:
    """A markdown table of per-class AP (rows) by domain (columns); ``-`` where a domain has no such object."""
    names = list(results)
    rows = ['| class | ' + ' | '.join(names) + ' |', '|---|' + '---:|' * len(names)]
    for c in next(iter(results.values()))['per_class']:
        cells = [results[n]['per_class'][c] for n in names]
        rows.append(f'| {c} | ' + ' | '.join('-' if v != v else f'{v:.2f}' for v in cells) + ' |')
    return '\n'.join(rows)
