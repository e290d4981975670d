"""One validation run over several domains: each domain scored on its own images, at any batch size."""
import pytest
import torch
from mmengine.evaluator import Evaluator
from mmengine.registry import init_default_scope
from mmengine.runner import Runner

from mmdg.apis.demo import demo_config
from mmdg.evaluation import MultiDomainIoUMetric


def _sample(pred, gt, domain):
    return dict(pred_sem_seg=dict(data=torch.tensor([pred])), gt_sem_seg=dict(data=torch.tensor([gt])),
                domain=domain)


def test_hand_computed_case():
    metric = MultiDomainIoUMetric()
    metric.dataset_meta = dict(classes=('a', 'b', 'c'))
    metric.process({}, [_sample([[0, 0], [1, 1]], [[0, 1], [1, 1]], 'night'),
                        _sample([[2, 2], [2, 2]], [[2, 2], [2, 2]], 'fog')])
    metric.process({}, [_sample([[1, 1], [1, 1]], [[1, 1], [1, 1]], 'night')])
    out = metric.compute_metrics(metric.results)
    # night: class a I=1 U=2, class b I=2+4 U=3+4; fog: class c only
    assert out['night/mIoU'] == pytest.approx((50 + 600 / 7) / 2)
    assert out['fog/mIoU'] == pytest.approx(100)
    assert out['mean/mIoU'] == pytest.approx(((50 + 600 / 7) / 2 + 100) / 2)
    assert 'mean_unseen/mIoU' not in out  # no unseen subset named: only the mean over every domain
    # night: 7 of 8 labelled pixels right (aAcc); class a 1/1, class b 6/7 (mAcc); c absent (NaN, left out)
    assert out['night/aAcc'] == pytest.approx(100 * 7 / 8)
    assert out['night/mAcc'] == pytest.approx((100 + 600 / 7) / 2)
    assert metric.domain_results['night']['num_images'] == 2
    assert metric.domain_results['night']['per_class_acc']['c'] != metric.domain_results['night']['per_class_acc']['c']


@pytest.mark.tool
def test_batch_size_does_not_change_the_result(demo_data):
    init_default_scope('mmdg')
    from mmdg.registry import MODELS
    cfg = demo_config('full', data_root=demo_data, num_workers=0)
    torch.manual_seed(0)
    model = MODELS.build(cfg.model).eval()
    targets = {k: cfg.target_datasets[k] for k in ('source', 'fog')}

    def run(domains, bs):
        loader = Runner.build_dataloader(dict(batch_size=bs, num_workers=0, sampler=dict(type='DefaultSampler',
                                              shuffle=False), dataset=dict(type='MultiDomainDataset', domains=domains)))
        evaluator = Evaluator(dict(type='MultiDomainIoUMetric'))
        evaluator.dataset_meta = loader.dataset.metainfo
        with torch.no_grad():
            for data in loader:
                evaluator.process(model.test_step(data), data)
        return evaluator.evaluate(len(loader.dataset))
    results = [run(targets, bs) for bs in (1, 5)]
    assert results[0] == pytest.approx(results[1])
    for name in targets:  # each domain alone scores what it scores beside the other
        separate = run({name: targets[name]}, 3)
        for score in ('aAcc', 'mIoU', 'mAcc'):
            assert results[0][f'{name}/{score}'] == pytest.approx(separate[f'{name}/{score}'])


def test_official_mean_and_unseen_mean_keep_their_names():
    """``mean/`` is the protocol's official mean (``mean_over``, default every evaluated domain, e.g. all five
    Diverse Weather domains); mmdg's mean over the unseen domains exists only as ``mean_unseen/``, and only
    where it is another set."""
    metric = MultiDomainIoUMetric(unseen=['fog', 'rain'])  # 'rain' is not evaluated here: left out
    metric.dataset_meta = dict(classes=('a', 'b', 'c'))
    metric.process({}, [_sample([[0, 0], [0, 0]], [[0, 0], [0, 0]], 'source'),
                        _sample([[2, 2], [2, 2]], [[2, 2], [1, 1]], 'fog')])
    out = metric.compute_metrics(metric.results)
    assert out['mean/mIoU'] == pytest.approx((out['source/mIoU'] + out['fog/mIoU']) / 2)
    assert out['mean_unseen/mIoU'] == out['fog/mIoU'] != out['mean/mIoU']
    same = MultiDomainIoUMetric(mean_over=['fog'], unseen=['fog'])  # e.g. Rein's ACDC: official = unseen
    same.dataset_meta = metric.dataset_meta
    same.process({}, [_sample([[0, 0], [0, 0]], [[0, 0], [0, 0]], 'source'),
                      _sample([[2, 2], [2, 2]], [[2, 2], [1, 1]], 'fog')])
    out2 = same.compute_metrics(same.results)
    assert out2['mean/mIoU'] == out['fog/mIoU'] and 'mean_unseen/mIoU' not in out2
    from mmdg.evaluation import domain_table
    table = domain_table({d: dict(mIoU=out[f'{d}/mIoU'], num_images=1) for d in ('source', 'fog')},
                         unseen=['fog'], scores=('mIoU',))
    assert '**mean (source, fog)**' in table and '**mean_unseen (fog)**' in table


def test_no_prefix_and_no_prefix_warning(monkeypatch):
    """Keys stay '<domain>/<score>'; mmengine's "The prefix is not set in metric class ..." notice (printed on
    every run for a metric whose prefix is None) is not printed."""
    from mmengine.evaluator import metric as base

    from mmdg.evaluation import MultiDomainVOCMetric
    notices = []
    monkeypatch.setattr(base, 'print_log', lambda msg, *a, **k: notices.append(msg))
    seg, det = MultiDomainIoUMetric(), MultiDomainVOCMetric()
    assert not [n for n in notices if 'prefix is not set' in n]
    seg.dataset_meta = dict(classes=('a',))
    seg.process({}, [_sample([[0]], [[0]], 'fog')])
    assert set(seg.evaluate(1)) == {'fog/aAcc', 'fog/mIoU', 'fog/mAcc', 'mean/aAcc', 'mean/mIoU', 'mean/mAcc'}
    assert det.prefix == ''
