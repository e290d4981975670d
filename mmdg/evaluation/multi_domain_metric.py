"""mIoU per domain in one validation run over a :class:`mmdg.datasets.MultiDomainDataset`."""
from collections import defaultdict
from typing import Dict, Sequence

import numpy as np
from mmengine.logging import MMLogger, print_log
from mmseg.evaluation import IoUMetric

from mmdg.registry import METRICS

from .domain_eval import per_class_iou


@METRICS.register_module()
class MultiDomainIoUMetric(IoUMetric):
    """IoU accumulated separately for each ``data_sample.domain``. Returns ``<domain>/mIoU`` for every
    domain and ``mean/mIoU`` (their mean, or the mean over ``mean_over`` if given); the per-class IoU of
    every domain is logged as a table. Samples without a domain tag count as ``'default'``."""

    def __init__(self, mean_over: Sequence[str] = None, **kwargs):
        kwargs.setdefault('iou_metrics', ['mIoU'])
        super().__init__(**kwargs)
        self.mean_over = list(mean_over) if mean_over else None

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
        classes = self.dataset_meta['classes']
        metrics, rows = {}, []
        for domain, areas in by_domain.items():
            iou = per_class_iou(areas)
            metrics[f'{domain}/mIoU'] = float(np.nanmean(iou)) if np.isfinite(iou).any() else float('nan')
            rows.append(f'{domain:>12s} | ' + ' '.join('   -  ' if v != v else f'{v:6.2f}' for v in iou))
        names = [d for d in (self.mean_over or by_domain) if d in by_domain]
        metrics['mean/mIoU'] = float(np.mean([metrics[f'{d}/mIoU'] for d in names]))
        header = f'{"domain":>12s} | ' + ' '.join(f'{c[:6]:>6s}' for c in classes)
        print_log('per-class IoU by domain:\n' + '\n'.join([header, *rows]), logger=MMLogger.get_current_instance())
        return metrics
