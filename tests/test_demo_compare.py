"""`make demo-compare` at reduced size: a table row per method, the chart, and what the demo is for: tuning
the pre-trained backbone generalises to the unseen styles better than training the same ViT from scratch.
The run compares SoRA, full fine-tuning, the frozen backbone and scratch (every method's demo config trains in
tests/test_train_methods.py); the command's list of methods is every method of the registry."""
import json

import numpy as np
import pytest

from mmdg.apis.demo import METHODS
from mmdg.apis.demo_compare import UNSEEN, compare_table, run_compare

pytestmark = pytest.mark.slow


def test_reduced_comparison_has_a_row_per_method_and_pretraining_beats_scratch(tmp_path, demo_data):
    assert run_compare.__defaults__[0] == METHODS and set(METHODS) >= {'sora', 'full', 'frozen', 'scratch'}
    # the pre-trained backbone adapted vs the same network from random weights (every method's parameter count
    # and training: test_dg_seg_configs, test_train_methods)
    methods = ('sora', 'scratch')
    lines = []
    res = run_compare(methods, seeds=(0,), max_iters=40, data_root=demo_data, work_dir=str(tmp_path / 'cmp'),
                      num_train=48, num_val=12, num_workers=0, progress=lines.append)
    summary = res['summary']
    assert list(summary) == list(methods) and len(lines) == len(methods)
    rows = res['table'].splitlines()[2:]
    assert [r.split('|')[1].strip() for r in rows] == list(methods)
    # method, parameters, source, each unseen style, mean unseen, between the outer bars
    assert all(len(r.split('|')) == 2 + 3 + len(UNSEEN) + 1 for r in rows)
    params = {m: s['parameters'] for m, s in summary.items()}
    assert 0 < params['sora'] < params['scratch']
    for m, s in summary.items():
        assert 0 <= s['unseen'][0] <= 100 and s['unseen'][1] is None, m  # one seed: no spread
        assert np.isclose(s['unseen'][0], np.mean([s[d][0] for d in UNSEEN])), m
    assert summary['sora']['unseen'][0] > summary['scratch']['unseen'][0] + 5, res['table']
    png = (tmp_path / 'cmp' / 'chart.png').read_bytes()
    assert png[:8] == b'\x89PNG\r\n\x1a\n' and len(png) > 10_000
    saved = json.load(open(tmp_path / 'cmp' / 'results.json'))
    assert set(saved['runs']) == set(methods) and saved['seeds'] == [0]
    assert res['table'] in (tmp_path / 'cmp' / 'results.md').read_text()


def test_several_seeds_show_their_spread():
    runs = {'a': [dict(parameters=dict(backbone=3), trained={d: dict(mIoU=v) for d, v in
                                                             zip(('source',) + UNSEEN, vals)})
                  for vals in ((50, 10, 20, 30, 40), (52, 12, 22, 32, 42))]}
    from mmdg.apis.demo_compare import summarise
    s = summarise(runs)['a']
    assert s['seeds'] == 2 and s['source'] == (51.0, np.std([50, 52], ddof=1))
    assert s['unseen'][0] == 26.0
    assert '51.00 ± 1.41' in compare_table(summarise(runs))
