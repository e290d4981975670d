"""aAcc / mIoU / mAcc per domain in one test or validation run over a :class:`mmdg.datasets.MultiDomainDataset`."""
from collections import defaultdict
from typing import Dict, Optional, Sequence

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


def mean_domains(domains: Sequence[str], mean_over: Optional[Sequence[str]] = None,
                 unseen: Optional[Sequence[str]] = None) -> Dict[str, list]:
    """Which evaluated ``domains`` each mean is over: ``mean`` the official mean of the protocol (``mean_over``,
    default every evaluated domain: GTA5 -> C/B/M the three targets, Diverse Weather all five domains with
    Daytime-Clear's test split, Rein's Cityscapes -> ACDC the four conditions without Cityscapes), and
    ``mean_unseen`` over ``unseen`` where that is another set: a mean of mmdg's own, under its own name."""
    official = [d for d in mean_over or domains if d in domains]
    out = dict(mean=official)
    unseen = [d for d in unseen or () if d in domains]
    if unseen and set(unseen) != set(official):
        out['mean_unseen'] = unseen
    return out


def domain_means(metrics: Dict[str, float], domains: Sequence[str], scores: Sequence[str],
                 mean_over: Optional[Sequence[str]] = None, unseen: Optional[Sequence[str]] = None
                 ) -> Dict[str, float]:
    """``mean/<score>`` and, where it differs, ``mean_unseen/<score>`` (see :func:`mean_domains`)."""
    return {f'{prefix}/{k}': float(np.mean([metrics[f'{d}/{k}'] for d in names])) if names else float('nan')
            for prefix, names in mean_domains(domains, mean_over, unseen).items() for k in scores}


@METRICS.register_module()
class MultiDomainIoUMetric(IoUMetric):
    """IoU accumulated separately for each ``data_sample.domain``. Returns ``<domain>/aAcc``,
    ``<domain>/mIoU``, ``<domain>/mAcc`` for every domain, ``mean/<score>`` (the protocol's official mean:
    over ``mean_over``, default all) and, where ``unseen`` names another set, ``mean_unseen/<score>`` (see
    :func:`mean_domains`); the per-class IoU and Acc of every domain are logged as a table with full class
    names, and kept with the image counts in ``domain_results`` (``{domain: dict(aAcc, mIoU, mAcc,
    num_images, per_class={class: IoU}, per_class_acc={class: Acc})}``) for the tools' tables. Samples
    without a domain tag count as ``'default'``."""

    SCORES = ('aAcc', 'mIoU', 'mAcc')
    #: no prefix: keys are '<domain>/mIoU', 'mean/mIoU' ('' rather than None, for which mmengine warns
    #: "The prefix is not set in metric class ..." on every run)
    default_prefix = ''

    def __init__(self, mean_over: Sequence[str] = None, unseen: Sequence[str] = None, **kwargs):
        self.mean_over, self.unseen = list(mean_over or []) or None, list(unseen or []) or None
        kwargs.setdefault('iou_metrics', ['mIoU'])
        super().__init__(**kwargs)
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
        metrics.update(domain_means(metrics, list(by_domain), self.SCORES, self.mean_over, self.unseen))
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
