"""VOC mAP per domain in one validation run over a :class:`mmdg.datasets.MultiDomainDataset` of detection
datasets (Diverse Weather: mAP@0.5, 11-point interpolation, as the benchmark reports it)."""
from collections import defaultdict
from typing import Dict, List, Sequence, Tuple

import numpy as np
from mmdet.evaluation import VOCMetric, eval_map
from mmengine.logging import MMLogger, print_log

from mmdg.registry import METRICS
from mmdg.evaluation.multi_domain_metric import domain_means


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
    ``data_sample.domain``. Returns ``<domain>/mAP`` for every domain, ``mean/mAP`` (the official mean: over
    ``mean_over``, default all domains, as Diverse Weather's five) and, where ``unseen`` names another set,
    ``mean_unseen/mAP``, in percent; the per-class AP of every domain is logged as a table with full
    class names and kept with the image counts in ``domain_results`` (``{domain: dict(mAP, num_images,
    per_class={class: AP})}``) for the tools' tables. Samples without a domain tag count as ``'default'``.
    ``nproc``: processes of ``eval_map``."""
    default_prefix = ''  # keys as the segmentation metric's: '<domain>/mAP', 'mean/mAP' (None: mmengine warns)

    def __init__(self, mean_over: Sequence[str] = None, unseen: Sequence[str] = None, iou_thrs: float = 0.5,
                 nproc: int = 4, **kwargs):
        self.mean_over, self.unseen = list(mean_over or []) or None, list(unseen or []) or None
        if not isinstance(iou_thrs, float):
            raise ValueError(f'MultiDomainVOCMetric takes one IoU threshold, got {iou_thrs}')
        kwargs.setdefault('eval_mode', '11points')
        super().__init__(iou_thrs=iou_thrs, metric='mAP', **kwargs)
        self.nproc = nproc
        self.domain_results: Dict[str, Dict] = {}

    def process(self, data_batch: dict, data_samples: Sequence[dict]) -> None:
        start = len(self.results)
        super().process(data_batch, data_samples)  # one (ann, dets) per sample, in order
        for i, sample in enumerate(data_samples):
            self.results[start + i] = (sample.get('domain', 'default'), self.results[start + i])

    def compute_metrics(self, results: list) -> Dict[str, float]:
        by_domain = defaultdict(list)
        for domain, res in results:
            by_domain[domain].append(res)
        classes = list(self.dataset_meta['classes'])
        metrics, self.domain_results = {}, {}
        for domain, res in by_domain.items():
            mean_ap, ap = voc_ap_per_class(res, self.iou_thrs[0], self.eval_mode, self.nproc)
            metrics[f'{domain}/mAP'] = mean_ap
            self.domain_results[domain] = dict(mAP=mean_ap, num_images=len(res),
                                               per_class={c: float(v) for c, v in zip(classes, ap)})
        metrics.update(domain_means(metrics, list(by_domain), ('mAP',), self.mean_over, self.unseen))
        width = max(len(c) for c in classes)
        domains = list(self.domain_results)
        fmt = lambda v: '     -' if v != v else f'{v:6.2f}'  # noqa: E731
        rows = [f'{"class":<{width}} | ' + ' | '.join(f'{d[:13]:>13s}' for d in domains)]
        rows += [f'{c:<{width}} | ' + ' | '.join(f'{fmt(self.domain_results[d]["per_class"][c]):>13s}' for d in domains)
                 for c in classes]
        rows.append(f'{"mAP":<{width}} | ' + ' | '.join(f'{fmt(self.domain_results[d]["mAP"]):>13s}' for d in domains))
        print_log(f'AP@{self.iou_thrs[0]} ({self.eval_mode}) by class and domain:\n' + '\n'.join(rows),
                  logger=MMLogger.get_current_instance())
        return metrics
