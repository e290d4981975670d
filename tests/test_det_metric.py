"""Per-domain VOC mAP@0.5 (11-point) against hand-computed AP, at any batch size."""
import numpy as np
import pytest
import torch

from mmdg.evaluation import MultiDomainVOCMetric


def _sample(domain, gt, pred, ignored=()):
    """gt / ignored: [(label, box)], pred: [(label, box, score)], boxes (x1, y1, x2, y2) inclusive."""
    def inst(items, with_score=False):
        d = dict(bboxes=torch.tensor([list(i[1]) for i in items], dtype=torch.float32).reshape(-1, 4),
                 labels=torch.tensor([i[0] for i in items], dtype=torch.long))
        if with_score:
            d['scores'] = torch.tensor([i[2] for i in items], dtype=torch.float32)
        return d
    return dict(domain=domain, gt_instances=inst(gt), ignored_instances=inst(ignored),
                pred_instances=inst(pred, with_score=True))


A, B = (0, 0, 9, 9), (20, 20, 29, 29)
FAR = (50, 50, 59, 59)
SAMPLES = [
    # night, class 0: GTs A, B; detections A (0.9, TP), FAR (0.8, FP), B (0.7, TP)
    # night, class 1: GT A; detection shifted by half a box (IoU 1/3 < 0.5: FP); so AP 0
    _sample('night', gt=[(0, A), (0, B), (1, A)], pred=[(0, A, 0.9), (0, FAR, 0.8), (0, B, 0.7), (1, (5, 0, 14, 9), 0.95)]),
    # night, second image, class 0: no GT, a detection (0.75, FP) ranked between the TPs
    _sample('night', gt=[], pred=[(0, A, 0.75)]),
    # night, third image: the second TP of class 0, and a detection on an ignored (difficult) box: neither
    _sample('night', gt=[(0, B)], pred=[(0, B, 0.7), (0, FAR, 0.99)], ignored=[(0, FAR)]),
    # fog, class 2 only: one GT, one exact detection (AP 100); class 0 detections without GT do not count
    _sample('fog', gt=[(2, A)], pred=[(2, A, 0.5), (0, B, 0.9)]),
]


def _eleven_point(precision, recall):
    return np.mean([max([p for p, r in zip(precision, recall) if r >= t], default=0) for t in np.linspace(0, 1, 11)])


def test_hand_computed_ap():
    # night, class 0: 3 GTs (A and B in image 1, B in image 3); by score: A .9 TP, FAR .8 FP,
    # A .75 FP (image 2 has no GT), B .7 TP, B .7 TP (the FAR .99 of image 3 hits an ignored box)
    tp = np.array([1, 0, 0, 1, 1])
    precision, recall = np.cumsum(tp) / np.arange(1, 6), np.cumsum(tp) / 3
    night_0 = _eleven_point(precision, recall)
    # interpolated precision (the best at this recall or more): 1 for recall 0-0.3, then 3/5 up to 1
    assert night_0 == pytest.approx((4 * 1 + 7 * 0.6) / 11)
    metric = MultiDomainVOCMetric(nproc=1)
    metric.dataset_meta = dict(classes=('a', 'b', 'c'))
    metric.process({}, SAMPLES[:3])
    metric.process({}, SAMPLES[3:])
    out = metric.compute_metrics(metric.results)
    assert out['night/mAP'] == pytest.approx(100 * (night_0 + 0) / 2)  # class c: no GT in night, left out
    assert out['fog/mAP'] == pytest.approx(100)
    assert out['mean/mAP'] == pytest.approx((out['night/mAP'] + 100) / 2)


@pytest.mark.parametrize('batch', [1, 2, 4])
def test_batch_size_and_order_do_not_matter(batch):
    metric = MultiDomainVOCMetric(nproc=1, unseen=['night'])
    metric.dataset_meta = dict(classes=('a', 'b', 'c'))
    order = SAMPLES[::-1] if batch == 2 else SAMPLES
    for i in range(0, len(order), batch):
        metric.process({}, order[i:i + batch])
    out = metric.compute_metrics(metric.results)
    assert out['night/mAP'] == pytest.approx(100 * (4 + 4.2) / 11 / 2)
    assert out['mean_unseen/mAP'] == out['night/mAP']  # the unseen domain only, under mmdg's own name
    assert out['mean/mAP'] == pytest.approx((out['night/mAP'] + out['fog/mAP']) / 2)  # every domain


def test_one_threshold_only():
    with pytest.raises(ValueError, match='one IoU threshold'):
        MultiDomainVOCMetric(iou_thrs=[0.5, 0.75])
