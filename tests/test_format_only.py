"""Predictions for a benchmark server: the ACDC test split (no labels) through the real tools/test.py."""
import glob
import json
import os.path as osp

import numpy as np
import pytest
from mmengine.config import Config
from PIL import Image

from conftest import REPO, invoke_tool
from mmdg.testing import toy_recipe

ACDC = osp.join(REPO, 'configs', 'dg_seg', 'sora', 'sora_dinov2-l_mask2former_4xb2-40k_cityscapes-to-acdc-512x512.py')
LABEL_IDS = {7, 8, 11, 12, 13, 17, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 31, 32, 33}


def _test(config, ckpt, *extra):
    return invoke_tool('test.py', config, ckpt, *extra)


@pytest.fixture(scope='module')
def trained(dg_roots, tmp_path_factory):
    from mmengine.runner import Runner
    work = str(tmp_path_factory.mktemp('acdc'))
    cfg = toy_recipe(Config.fromfile(ACDC), dg_roots, work)
    Runner.from_cfg(cfg).train()
    path = osp.join(work, 'config.py')
    cfg.dump(path)
    return path, osp.join(work, 'iter_2.pth'), dg_roots['acdc']


@pytest.mark.tool
def test_acdc_test_split_is_written_per_condition_in_train_ids(trained, tmp_path):
    config, ckpt, acdc_root = trained
    out = str(tmp_path / 'submission')
    proc = _test(config, ckpt, '--out', out)
    assert proc.returncode == 0, proc.stderr[-3000:]
    for cond in ('fog', 'night', 'rain', 'snow'):
        images = glob.glob(osp.join(acdc_root, 'rgb_anon', cond, 'test', '**', '*_rgb_anon.png'), recursive=True)
        written = sorted(glob.glob(osp.join(out, cond, '*.png')))
        assert images and len(written) == len(images)
        assert {osp.basename(p) for p in written} == {osp.basename(p) for p in images}
        for p in written:
            pred = np.asarray(Image.open(p))
            assert pred.shape == np.asarray(Image.open(images[0])).shape[:2]
            assert pred.max() <= 18  # train ids, as the official configs write them
    note = json.load(open(osp.join(out, 'label_encoding.json')))  # the folder says how to read it
    assert note['encoding'] == 'train_id' and note['values']['0'] == 'road' and note['values']['18'] == 'bicycle'
    assert f'predictions: {out} (train_id:' in proc.stdout  # and so does the console
    again = _test(config, ckpt, '--out', out)  # never into a folder that holds predictions already
    assert again.returncode == 1 and 'not empty' in again.stderr and 'Traceback' not in again.stderr


@pytest.mark.tool
def test_label_id_encoding(trained, tmp_path):
    config, ckpt, _ = trained
    out = str(tmp_path / 'ids')
    proc = _test(config, ckpt, '--out', out, '--label-encoding', 'label_id')
    assert proc.returncode == 0, proc.stderr[-3000:]
    values = set()
    for p in glob.glob(osp.join(out, '*', '*.png')):
        values |= set(np.unique(np.asarray(Image.open(p))).tolist())
    assert values and values <= LABEL_IDS
    note = json.load(open(osp.join(out, 'label_encoding.json')))
    assert note['encoding'] == 'label_id' and note['values']['7'] == 'road' and note['values']['33'] == 'bicycle'


def test_out_beside_the_metric_and_format_only():
    from mmdg.apis.evaluation import configure_prediction_output
    cfg = Config(dict(work_dir='w', test_evaluator=dict(type='MultiDomainIoUMetric')))
    configure_prediction_output(cfg, out='/nonexistent/preds')
    assert [e['type'] for e in cfg.test_evaluator] == ['MultiDomainIoUMetric', 'SegPredictionWriter']
    cfg = Config(dict(work_dir='w', test_evaluator=dict(type='MultiDomainIoUMetric')))
    configure_prediction_output(cfg, out='/nonexistent/preds', format_only=True, encoding='train_id')
    assert cfg.test_evaluator == dict(type='SegPredictionWriter', output_dir='/nonexistent/preds', encoding='train_id')
    with pytest.raises(ValueError, match='--out'):
        configure_prediction_output(Config(dict(work_dir='w', test_evaluator=dict(type='IoUMetric'))),
                                    format_only=True)
    cfg = Config(dict(work_dir='w', test_evaluator=dict(type='SegPredictionWriter', output_dir='format_results')))
    configure_prediction_output(cfg)
    assert cfg.test_evaluator.output_dir == osp.join('w', 'format_results')
