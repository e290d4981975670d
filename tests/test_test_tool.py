"""tools/test.py through its real command line: Runner.test() with labelled pictures per domain (--show-dir),
the official multi-scale + flip TTA (--tta), a quiet console, --vis-backend; on the demo data and on the
real-format Cityscapes frame."""
import os.path as osp
import subprocess
import sys

import pytest
import torch
from mmengine.config import Config

from conftest import REPO
from mmdg.apis.demo import demo_config


def _run(*args):
    return subprocess.run([sys.executable, osp.join(REPO, 'tools', 'test.py'), *args], cwd=REPO, capture_output=True,
                          text=True)


@pytest.fixture(scope='module')
def demo_model(tmp_path_factory):
    """The demo config (two images of one style, no workers) and an untrained full checkpoint with its classes:
    what the tools need, without a training run."""
    from mmengine.registry import init_default_scope
    from mmdg.datasets.synthetic import write_cityscapes_layout
    tmp = tmp_path_factory.mktemp('test_tool')
    root = str(tmp / 'data')
    write_cityscapes_layout(root, splits=dict(val=2), workers=1, progress=False)
    cfg = demo_config('full', data_root=root, work_dir=str(tmp / 'work'), num_workers=0)
    cfg.target_datasets = dict(fog=cfg.target_datasets.fog)
    cfg.test_dataloader.dataset.domains = cfg.target_datasets
    init_default_scope('mmdg')
    from mmdg.registry import DATASETS, MODELS
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    meta = dict(DATASETS.get('CityscapesDataset').METAINFO)
    ckpt = str(tmp / 'model.pth')
    torch.save(dict(state_dict=model.state_dict(), meta=dict(dataset_meta=meta)), ckpt)
    path = str(tmp / 'cfg.py')
    cfg.dump(path)
    return path, ckpt, tmp


def test_show_dir_tta_and_quiet_console(demo_model, tmp_path):
    config, ckpt, _ = demo_model
    show = tmp_path / 'show'
    proc = _run(config, ckpt, '--work-dir', str(tmp_path / 'work'), '--show-dir', str(show), '--tta')
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert '| domain | aAcc | mIoU | mAcc | images |' in proc.stdout and '| fog |' in proc.stdout
    assert 'Config:' not in proc.stdout and 'System environment' not in proc.stdout
    assert len(proc.stdout.splitlines()) < 20, proc.stdout
    pictures = sorted((show / 'fog').glob('*.png'))
    assert len(pictures) == 2  # one per image, in its domain's folder
    log = next((tmp_path / 'work').glob('*/*.log')).read_text()
    assert 'SegTTAModel' in log and 'TestTimeAug' in log and 'Config:' in log


def test_vis_backend_switch(demo_model, tmp_path):
    import importlib.util
    sys.path.insert(0, REPO)
    from tools.test import main
    config, ckpt, _ = demo_model
    args = [config, ckpt, '--work-dir', str(tmp_path / 'work'), '--vis-backend', 'tensorboard']
    if importlib.util.find_spec('tensorboard') is None:
        with pytest.raises(SystemExit, match='pip install tensorboard'):
            main(args)
    else:
        main(args)
        assert list((tmp_path / 'work').glob('*/vis_data/events.out.tfevents.*'))


def test_add_vis_backend_and_tta_config():
    from mmdg.apis.tta import apply_tta
    from mmdg.utils.console import add_vis_backend
    cfg = Config(dict(visualizer=dict(type='SegLocalVisualizer', vis_backends=[dict(type='LocalVisBackend')])))
    add_vis_backend(cfg, 'local')
    assert [b['type'] for b in cfg.visualizer.vis_backends] == ['LocalVisBackend']
    with pytest.raises(SystemExit, match='--vis-backend'):
        add_vis_backend(cfg, 'mlflow')
    pipeline = [dict(type='LoadImageChecked'), dict(type='Resize', scale=(2048, 1024), keep_ratio=True),
                dict(type='LoadAnnotationsChecked'), dict(type='PackSegInputs')]
    cfg = Config(dict(model=dict(type='EncoderDecoder'), test_dataloader=dict(dataset=dict(
        type='MultiDomainDataset', domains=dict(a=dict(type='X', pipeline=pipeline))))))
    apply_tta(cfg)
    tta = cfg.test_dataloader.dataset.domains.a.pipeline[-1]
    assert cfg.model.type == 'SegTTAModel' and cfg.model.module.type == 'EncoderDecoder'
    assert [v['scale'] for v in tta['transforms'][0]] == [(1024, 512), (1536, 768), (2048, 1024), (2560, 1280),
                                                         (3072, 1536), (3584, 1792)]
    assert [f['prob'] for f in tta['transforms'][1]] == [0., 1.]


def test_real_format_cityscapes(demo_model, fixtures_dir, tmp_path):
    config, ckpt, _ = demo_model
    cfg = Config.fromfile(config)
    cfg.test_dataloader.dataset = dict(type='CityscapesDGDataset', data_root=osp.join(fixtures_dir, 'cityscapes'),
                                       pipeline=cfg.test_pipeline)
    cfg.test_evaluator = dict(type='IoUMetric', iou_metrics=['mIoU'])
    path = str(tmp_path / 'cfg.py')
    cfg.dump(path)
    proc = _run(path, ckpt, '--work-dir', str(tmp_path / 'work'), '--show-dir', str(tmp_path / 'show'))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert 'mIoU' in proc.stdout
    assert len(list((tmp_path / 'show').glob('*.png'))) == 1  # a plain dataset: no domain folder
