"""The command-line tools on a detection config: tools/train.py (run as its command line runs it) trains DINO
with CLoRA (its auxiliary loss reaches the mmdet detector's loss), then tools/cross_domain_eval.py scores the
checkpoint per domain."""
import csv
import json
import os.path as osp

import pytest
from mmengine.config import Config

from conftest import DWD_FOLDERS, REPO, invoke_tool
from mmdg.testing import toy_recipe

DINO_LORA = osp.join(REPO, 'configs', 'dg_det', 'lora', 'lora_dinov2-l_dino_4xb2-40k_dwd-1024.py')


def _run(*args):
    proc = invoke_tool(*args)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout + proc.stderr


@pytest.mark.tool
def test_train_then_cross_domain_eval(tmp_path):
    from mmdg.datasets.voc_writer import write_synthetic_voc
    write_synthetic_voc(str(tmp_path / 'dwd'), DWD_FOLDERS, dict(train=2, test=1), size=(64, 128))
    cfg = Config.fromfile(DINO_LORA)
    cfg.model.backbone.adapter = dict(type='CLoRA', r=4, blocks=(8, 24))
    cfg = toy_recipe(cfg, dict(DiverseWeatherDataset=str(tmp_path / 'dwd')), str(tmp_path / 'work'))
    cfg.val_evaluator.nproc = 1
    config = str(tmp_path / 'clora_dino_tiny.py')
    cfg.dump(config)

    log = _run('tools/train.py', config, '--work-dir', str(tmp_path / 'work'))
    assert 'loss_sade' in log  # CLoRA's auxiliary loss, added by AdapterAuxLossHook to DINO's loss dict
    ckpt = tmp_path / 'work' / 'iter_2.pth'
    assert ckpt.is_file()

    out = tmp_path / 'eval'
    res = invoke_tool('cross_domain_eval.py', config, ckpt, '--targets', 'daytime_clear', 'night_rainy', '--out-dir',
                      out, '--batch-size', '2', '--overlays', '1')
    assert res.returncode == 0, res.stderr[-2000:]
    table = open(out / 'results.md').read()
    assert '| daytime_clear |' in table and '| night_rainy |' in table and 'mAP@0.5' in table
    results = json.load(open(out / 'results.json'))['results']
    assert set(results) == {'daytime_clear', 'night_rainy'}
    # the recipe scores the unseen domains on their train.txt, as the official code reads them (2 images written)
    assert results['daytime_clear']['num_images'] == 1 and results['night_rainy']['num_images'] == 2
    assert list(results['daytime_clear']['per_class']) == ['bus', 'bike', 'car', 'motor', 'person', 'rider', 'truck']
    rows = list(csv.reader(open(out / 'results.csv')))
    assert rows[0][:4] == ['domain', 'mAP', 'images', 'AP.bus'] and len(rows) == 3
    for domain in ('daytime_clear', 'night_rainy'):  # labelled boxes through mmdet's DetLocalVisualizer
        assert len(list((out / 'vis' / domain).glob('*.png'))) == 1
    res = invoke_tool('cross_domain_eval.py', config, ckpt, '--slide')
    assert res.returncode == 1 and '--slide is for segmentation' in res.stderr
