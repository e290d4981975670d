"""tools/test.py through its real command line: Runner.test() with labelled pictures per domain (--show-dir),
the official multi-scale + flip TTA (--tta), a quiet console, --vis-backend; on the demo data and on the
real-format Cityscapes frame."""
import os.path as osp

import pytest
from mmengine.config import Config

from conftest import invoke_tool


def _run(*args):
    return invoke_tool('test.py', *args)


def test_show_dir_tta_and_quiet_console(demo_model, tmp_path):
    config, ckpt, _ = demo_model
    show = tmp_path / 'show'
    proc = _run(config, ckpt, '--work-dir', str(tmp_path / 'work'), '--show-dir', str(show), '--tta')
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert '| domain | aAcc | mIoU | mAcc | images |' in proc.stdout and '| fog |' in proc.stdout
    assert 'Config:' not in proc.stdout and 'System environment' not in proc.stdout
    assert 'Per-class IoU:' in proc.stdout and '| traffic light |' in proc.stdout  # after the summary, as mmseg
    assert 'test: 100%' in proc.stderr and '1/1 [' in proc.stderr  # a progress bar with its ETA (one batch here)
    assert len([line for line in proc.stdout.splitlines() if not line.startswith('|')]) < 10, proc.stdout
    pictures = sorted((show / 'fog').glob('*.png'))
    assert len(pictures) == 2  # one per image, in its domain's folder
    log = next((tmp_path / 'work').glob('*/*.log')).read_text()
    assert 'SegTTAModel' in log and 'TestTimeAug' in log and 'Config:' in log


def test_vis_backend_switch(demo_model, tmp_path):
    import importlib.util
    config, ckpt, _ = demo_model
    res = _run(config, ckpt, '--work-dir', str(tmp_path / 'work'), '--vis-backend', 'tensorboard')
    if importlib.util.find_spec('tensorboard') is None:
        assert res.returncode == 1 and 'pip install tensorboard' in res.stderr
    else:
        assert res.returncode == 0, res.stderr[-3000:]
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
