"""A shortened `make demo`: training lifts mIoU clearly above the untrained model, table and PNGs written."""
import os

import numpy as np

from mmdg.apis.demo import run_demo


def test_short_demo_learns(tmp_path, demo_data):
    res = run_demo('full', data_root=demo_data, work_dir=str(tmp_path / 'work'), max_iters=150,
                   num_train=48, num_val=12, num_workers=0, evaluate_untrained=True, num_overlays=1)
    before, after = res['untrained'], res['trained']
    assert set(after) == {'source', 'realistic', 'night', 'fog', 'rain'}
    assert after['source']['mIoU'] > before['source']['mIoU'] + 15, (before['source'], after['source'])
    unseen = [d for d in after if d != 'source']
    assert np.mean([after[d]['mIoU'] for d in unseen]) > np.mean([before[d]['mIoU'] for d in unseen]) + 5
    assert '| **mean (realistic, night, fog, rain)** |' in res['table']
    overlays = sorted(os.listdir(tmp_path / 'work' / 'overlays'))
    assert overlays == [f'{d}_0.png' for d in sorted(after)]
    assert (tmp_path / 'work' / 'results.json').exists() and (tmp_path / 'work' / 'results.md').exists()
