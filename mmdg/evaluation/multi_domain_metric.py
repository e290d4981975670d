"""aAcc / mIoU / mAcc per domain in one test or validation run over a :class:`mmdg.datasets.MultiDomainDataset`."""
from collections import defaultdict
from typing import Dict, Sequence

import numpy as np
from mmengine.logging import MMLogger, print_log
from mmseg.evaluation import IoUMetric

from mmdg.registry import METRICS


def class_scores(areas: Sequence) -> Dict:
    """aAcc, mIoU, mAcc and per-class IoU / Acc (all %) from IoUMetric's ``(intersect, union, pred, label)``
    areas. A class absent from both prediction and label has IoU NaN, one absent from the label Acc NaN;
    both are left out of the means."""
    inter, union, _, label = (sum(r[i] for r in areas).double().numpy() for i in range(4))
    with np.errstate(divide='ignore', invalid='ignore'):
        iou = np.where(union > 0, inter / union, np.nan) * 100
        acc = np.where(label > 0, inter / label, np.nan) * 100

    def mean(v):
        return float(np.nanmean(v)) if np.isfinite(v).any() else float('nan')
    return dict(aAcc=float(inter.sum() / max(label.sum(), 1) * 100), mIoU=mean(iou), mAcc=mean(acc), IoU=iou, Acc=acc)


def per_class_iou(areas: Sequence) -> np.ndarray:
    """Per-class IoU (%), NaN for classes absent from both prediction and label."""
    return class_scores(areas)['IoU']


@METRICS.register_module()
class MultiDomainIoUMetric(IoUMetric):
    """IoU accumulated separately for each ``data_sample.domain``. Returns ``<domain>/aAcc``,
    ``<domain>/mIoU``, ``<domain>/mAcc`` for every domain and ``mean/<score>`` (their mean, or the mean
    over ``mean_over``); the per-class IoU and Acc of every domain are logged as a table with full class
    names, and kept with the image counts in ``domain_results`` (``{domain: dict(aAcc, mIoU, mAcc,
    num_images, per_class={class: IoU}, per_class_acc={class: Acc})}``) for the tools' tables. Samples
    without a domain tag count as ``'default'``."""

    SCORES = ('aAcc', 'mIoU', 'mAcc')

    def __init__(self, mean_over: Sequence[str] = None, **kwargs):
        kwargs.setdefault('iou_metrics', ['mIoU'])
        super().__init__(**kwargs)
        self.mean_over = list(mean_over) if mean_over else None
        self.domain_results: Dict[str, Dict] = {}

    def process(self, data_batch: dict, data_samples: Sequence[dict]) -> None:
        start = len(self.results)
        super().process(data_batch, data_samples)  # one result per sample, in order
        for i, sample in enumerate(data_samples):
            if start + i < len(self.results):
                self.results[start + i] = (sample.get('domain', 'default'), self.results[start + i])

    def compute_metrics(self, results: list) -> Dict[str, float]:
        by_domain = defaultdict(list)
        for domain, areas in results:
            by_domain[domain].append(areas)
        classes = list(self.dataset_meta['classes'])
        metrics, self.domain_results = {}, {}
        for domain, areas in by_domain.items():
            s = class_scores(areas)
            for k in self.SCORES:
                metrics[f'{domain}/{k}'] = s[k]
            self.domain_results[domain] = dict(
                **{k: s[k] for k in self.SCORES}, num_images=len(areas),
                per_class={c: float(v) for c, v in zip(classes, s['IoU'])},
                per_class_acc={c: float(v) for c, v in zip(classes, s['Acc'])})
        names = [d for d in (self.mean_over or by_domain) if d in by_domain]
        for k in self.SCORES:
            metrics[f'mean/{k}'] = float(np.mean([metrics[f'{d}/{k}'] for d in names])) if names else float('nan')
        print_log('per-class IoU / Acc by domain:\n' + self._class_table(classes),
                  logger=MMLogger.get_current_instance())
        return metrics

    def _class_table(self, classes) -> str:
        width = max(len(c) for c in classes)
        domains = list(self.domain_results)
        head = f'{"class":<{width}} | ' + ' | '.join(f'{d[:13]:>13s}' for d in domains)
        sub = f'{"":<{width}} | ' + ' | '.join(f'{"IoU":>6s} {"Acc":>6s}' for _ in domains)
        fmt = lambda v: '     -' if v != v else f'{v:6.2f}'  # noqa: E731
        rows = [f'{c:<{width}} | ' + ' | '.join(
            f'{fmt(self.domain_results[d]["per_class"][c])} {fmt(self.domain_results[d]["per_class_acc"][c])}'
            for d in domains) for c in classes]
        return '\n'.join([head, sub, *rows])
