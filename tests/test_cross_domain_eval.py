"""tools/cross_domain_eval.py: per-target tables, CSV and JSON from one checkpoint."""
import csv
import json
import subprocess
import sys

from mmengine.runner import Runner

from conftest import REPO
from mmdg.apis.demo import demo_config


def _write_cfg(tmp_path, demo_data):
    cfg = demo_config('lora', data_root=demo_data, work_dir=str(tmp_path / 'work'), max_iters=1, num_workers=0)
    cfg.train_dataloader.batch_size = 2
    path = tmp_path / 'cfg.py'
    cfg.dump(str(path))
    Runner.from_cfg(cfg).train()
    return path, tmp_path / 'work' / 'iter_1.pth'


def test_tables_csv_json_and_overlays(tmp_path, demo_data):
    cfg, ckpt = _write_cfg(tmp_path, demo_data)
    out = tmp_path / 'eval'
    res = subprocess.run([sys.executable, 'tools/cross_domain_eval.py', str(cfg), str(ckpt), '--targets', 'source',
                          'fog', '--out-dir', str(out), '--overlays', '1', '--slide', '--crop', '128', '--stride',
                          '96'], cwd=REPO, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr[-3000:]
    assert '| source |' in res.stdout and '| fog |' in res.stdout and '**mean (source, fog)**' in res.stdout
    md = (out / 'results.md').read_text()
    assert '## Per-class IoU' in md and '| road |' in md
    rows = list(csv.reader(open(out / 'results.csv')))
    assert [r[0] for r in rows] == ['domain', 'source', 'fog'] and len(rows[0]) == 3 + 19
    data = json.loads((out / 'results.json').read_text())
    assert data['results']['fog']['num_images'] == 12
    assert abs(float(rows[2][1]) - data['results']['fog']['mIoU']) < 1e-3
    assert sorted(p.name for p in (out / 'overlays').iterdir()) == ['fog_0.png', 'source_0.png']
    bad = subprocess.run([sys.executable, 'tools/cross_domain_eval.py', str(cfg), str(ckpt), '--targets', 'mars'],
                         cwd=REPO, capture_output=True, text=True)
    assert bad.returncode != 0 and "unknown target(s) ['mars']" in bad.stderr


def test_real_format_fixtures(tmp_path, demo_data, fixtures_dir):
    """Cityscapes, BDD100K and Mapillary (v1.2, converted to 19 classes) files in their real formats."""
    import os.path as osp
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
    res = subprocess.run([sys.executable, 'tools/cross_domain_eval.py', str(tmp_path / 'fixtures_cfg.py'), str(ckpt),
                          '--out-dir', str(out), '--overlays', '1'], cwd=REPO, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr[-3000:]
    data = json.loads((out / 'results.json').read_text())['results']
    assert {k: v['num_images'] for k, v in data.items()} == dict(cityscapes=1, bdd100k=3, mapillary=1)
    for name in data:
        assert f'| {name} |' in res.stdout
    assert all(len(v['per_class']) == 19 for v in data.values())
    assert sorted(p.name for p in (out / 'overlays').iterdir()) == ['bdd100k_0.png', 'cityscapes_0.png', 'mapillary_0.png']
