"""tools/cross_domain_eval.py: per-target tables, CSV and JSON from one checkpoint."""
import csv
import json
import os.path as osp

import pytest
from mmengine.runner import Runner

from conftest import invoke_tool
from mmdg.apis.demo import demo_config


def _write_cfg(tmp_path, demo_data):
    cfg = demo_config('lora', data_root=demo_data, work_dir=str(tmp_path / 'work'), max_iters=1, num_workers=0)
    cfg.train_dataloader.batch_size = 2
    path = tmp_path / 'cfg.py'
    cfg.dump(str(path))
    Runner.from_cfg(cfg).train()
    return path, tmp_path / 'work' / 'iter_1.pth'


@pytest.mark.tool
def test_tables_csv_json_and_overlays(tmp_path, demo_data):
    """Runner.test() over two targets: aAcc / mIoU / mAcc with the mean over both and (mean_unseen) the one unseen,
    full class names, labelled pictures per domain, a new folder per run under the checkpoint's."""
    cfg, ckpt = _write_cfg(tmp_path, demo_data)
    out = tmp_path / 'eval'
    res = invoke_tool('cross_domain_eval.py', cfg, ckpt, '--targets', 'source', 'fog', '--out-dir', out, '--overlays', '1', '--slide', '--crop', '128', '--stride', '96')
    assert res.returncode == 0, res.stderr[-3000:]
    assert '| domain | aAcc | mIoU | mAcc | images |' in res.stdout
    assert '| source |' in res.stdout and '| fog |' in res.stdout
    assert '**mean (source, fog)**' in res.stdout and '**mean_unseen (fog)**' in res.stdout
    assert 'Config:' not in res.stdout + res.stderr  # the quiet console: the config is in the log file only
    md = (out / 'results.md').read_text()
    assert '## Per-class IoU' in md and '## Per-class Acc' in md and '| traffic light |' in md
    rows = list(csv.reader(open(out / 'results.csv')))
    assert [r[0] for r in rows] == ['domain', 'source', 'fog'] and len(rows[0]) == 5 + 2 * 19
    assert rows[0][:5] == ['domain', 'aAcc', 'mIoU', 'mAcc', 'images'] and 'IoU.traffic light' in rows[0]
    data = json.loads((out / 'results.json').read_text())
    assert data['results']['fog']['num_images'] == 12
    assert abs(float(rows[2][2]) - data['results']['fog']['mIoU']) < 1e-3
    assert sorted(p.name for p in (out / 'vis').iterdir()) == ['fog', 'source']
    assert [len(list((out / 'vis' / d).iterdir())) for d in ('fog', 'source')] == [1, 1]
    log = open(osp.join(data['log_dir'], osp.basename(data['log_dir']) + '.log')).read()
    assert 'Config:' in log and 'per-class IoU / Acc by domain' in log
    again = invoke_tool('cross_domain_eval.py', cfg, ckpt, '--out-dir', out)
    assert again.returncode == 1 and 'holds results already' in again.stderr
    bad = invoke_tool('cross_domain_eval.py', cfg, ckpt, '--targets', 'mars')
    assert bad.returncode != 0 and "unknown target(s) ['mars']" in bad.stderr


@pytest.mark.tool
def test_default_folder_is_new_per_run(tmp_path, demo_data):
    """<checkpoint folder>/cross_domain/<checkpoint name>/<timestamp>/: two runs, two folders. The second
    goes through ``tools/test.py --cross-domain`` (how tools/dist_test.sh reaches this tool)."""
    import re
    cfg, ckpt = _write_cfg(tmp_path, demo_data)
    args = [str(cfg), str(ckpt), '--targets', 'fog', '--overlays', '0', '--cfg-options',
            'target_datasets.fog.indices=2']
    folders = []
    for tool, extra in (('cross_domain_eval.py', []), ('test.py', ['--cross-domain'])):
        res = invoke_tool(tool, *extra, *args)
        assert res.returncode == 0, res.stderr[-2000:]
        folders.append(re.search(r'written to (\S+):', res.stdout).group(1))
    first, second = folders
    assert first != second
    assert osp.dirname(first) == osp.dirname(second) == str(tmp_path / 'work' / 'cross_domain' / 'iter_1')
    for folder in (first, second):
        assert json.load(open(osp.join(folder, 'results.json')))['results']['fog']['num_images'] == 2


@pytest.mark.tool
def test_real_format_fixtures(tmp_path, demo_data, fixtures_dir):
    """Cityscapes, BDD100K and Mapillary (v1.2, converted to 19 classes) files in their real formats."""
    from mmengine.config import Config
    from mmdg.datasets.converters import conversion_pairs, convert
    cfg_path, ckpt = _write_cfg(tmp_path, demo_data)
    images, pairs = conversion_pairs('mapillary', osp.join(fixtures_dir, 'mapillary'), out_dir=str(tmp_path / 'map'))
    convert(pairs, 'mapillary', images, nproc=1, progress=False)
    cfg = Config.fromfile(str(cfg_path))
    pipeline = [dict(type='LoadImageChecked'), dict(type='Resize', scale=(256, 128), keep_ratio=True),
                dict(type='LoadAnnotationsChecked'), dict(type='PackSegInputs')]
    cfg.target_datasets = dict(
        cityscapes=dict(type='CityscapesDGDataset', data_root=osp.join(fixtures_dir, 'cityscapes'), pipeline=pipeline),
        bdd100k=dict(type='BDD100KDGDataset', data_root=osp.join(fixtures_dir, 'bdd100k'), pipeline=pipeline),
        mapillary=dict(type='MapillaryCS19Dataset', data_prefix=dict(
            img_path=osp.join(fixtures_dir, 'mapillary', 'images'), seg_map_path=str(tmp_path / 'map' / 'labelTrainIds')),
            pipeline=pipeline))
    cfg.dump(str(tmp_path / 'fixtures_cfg.py'))
    out = tmp_path / 'eval'
    res = invoke_tool('cross_domain_eval.py', tmp_path / 'fixtures_cfg.py', ckpt, '--out-dir', out, '--overlays', '1', '--batch-size', '1')
    assert res.returncode == 0, res.stderr[-3000:]
    data = json.loads((out / 'results.json').read_text())['results']
    assert {k: v['num_images'] for k, v in data.items()} == dict(cityscapes=1, bdd100k=3, mapillary=1)
    for name in data:
        assert f'| {name} |' in res.stdout
    assert all(len(v['per_class']) == 19 for v in data.values())
    assert sorted(p.name for p in (out / 'vis').iterdir()) == ['bdd100k', 'cityscapes', 'mapillary']
    assert all(len(list((out / 'vis' / d).iterdir())) == 1 for d in data)
