"""mmdg configs build from every entry point without anyone importing mmdg by hand."""
import os
import re
import subprocess
import sys

import pytest

from conftest import REPO

pytestmark = pytest.mark.cli


def _run(code_or_args, timeout=600):
    args = [sys.executable, '-c', code_or_args] if isinstance(code_or_args, str) else [sys.executable, *code_or_args]
    res = subprocess.run(args, cwd=REPO, capture_output=True, text=True, timeout=timeout,
                         env=dict(os.environ, PYTHONPATH=''))
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-5000:]
    return res.stdout + res.stderr


def test_adapters_package_imports_no_openmmlab():
    out = _run('import sys, mmdg.adapters; '
               'print(sorted({m.split(".")[0] for m in sys.modules} & {"mmengine", "mmcv", "mmseg", "mmdet"}))')
    assert out.strip().endswith('[]')


def test_runtime_datasets_import_no_offline_converter():
    """The dataset classes and transforms read layouts and their errors from mmdg.datasets.layouts; the
    label converters (multiprocessing, cv2 writers) stay out of a training process."""
    out = _run('import sys, mmdg.datasets; print(sorted(m for m in sys.modules if m.startswith("mmdg.datasets.")))')
    loaded = eval(out.strip().splitlines()[-1])
    assert 'mmdg.datasets.layouts' in loaded and 'mmdg.datasets.converters' not in loaded, loaded


def test_mmseg_init_model_builds_an_mmdg_config():
    out = _run("from mmseg.apis import init_model\n"
               "m = init_model('configs/demo/sora.py', device='cpu')\n"
               "print(type(m.backbone).__name__, type(m.backbone.vit.blocks[2].attn.qkv).__name__)")  # blocks 2-5 adapted
    assert 'TimmViT SoRALinear' in out


def test_runner_from_cfg_builds_an_mmdg_config(tmp_path):
    out = _run("from mmengine.config import Config\nfrom mmengine.runner import Runner\n"
               "cfg = Config.fromfile('configs/demo/clora.py')\n"
               f"cfg.work_dir = {str(tmp_path)!r}\n"
               "runner = Runner.from_cfg(cfg)\n"
               "print(type(runner.model.backbone).__name__, [type(h).__name__ for h in runner.hooks])")
    assert 'TimmViT' in out and 'AdapterAuxLossHook' in out


def _data_opts(iters):
    opts = [f'train_cfg.max_iters={iters}', f'train_cfg.val_interval={iters}',
            f'default_hooks.checkpoint.interval={iters}', 'default_hooks.logger.interval=1']
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        opts += [f'{loader}.num_workers=0', f'{loader}.persistent_workers=False', f'{loader}.batch_size=2']
    return opts


def test_train_resume_and_test_tools(tmp_path, demo_data):
    from mmdg.apis.demo import demo_config
    work = tmp_path / 'work'
    cfg = str(tmp_path / 'clora.py')  # the demo config, pointed at the test's data
    demo_config('clora', data_root=demo_data).dump(cfg)
    out = _run(['tools/train.py', cfg, '--work-dir', str(work), '--cfg-options', *_data_opts(2)])
    assert (work / 'iter_2.pth').exists()
    assert 'loss_sade' in out, 'CLoRA SADE must reach the logged training loss'
    # (--resume in a subprocess: tests/test_resume_after_kill.py)
    out = _run(['tools/test.py', cfg, str(work / 'iter_2.pth'), '--work-dir', str(work / 'test'),
                '--cfg-options', *_data_opts(2)])
    assert re.search(r'fog/mIoU: \d', out) and re.search(r'mean/mIoU: \d', out)


def test_typo_in_a_module_name_is_a_clear_error(tmp_path):
    cfg = tmp_path / 'typo.py'
    cfg.write_text(f"_base_ = {os.path.join(REPO, 'configs/demo/full.py')!r}\n"
                   "model = dict(backbone=dict(type='TimmVit'))\n")
    res = subprocess.run([sys.executable, '-c', "from mmseg.apis import init_model\n"
                          f"init_model({str(cfg)!r}, device='cpu')"], cwd=REPO, capture_output=True, text=True)
    assert res.returncode != 0 and 'TimmVit is not in the' in res.stderr


def test_mmseg_inference_model_runs_an_mmdg_config():
    """mmseg's own init_model + inference_model on an mmdg config and an image array: the checked label loader
    in the test pipeline lets a bare image through (it stopped with KeyError: 'seg_map_path')."""
    import numpy as np
    from mmseg.apis import inference_model, init_model
    model = init_model(os.path.join(REPO, 'configs', 'demo', 'sora.py'), device='cpu')
    result = inference_model(model, np.random.default_rng(0).integers(0, 255, (64, 128, 3), dtype=np.uint8))
    assert tuple(result.pred_sem_seg.data.shape) == (1, 64, 128)


def test_mmdet_inference_detector_runs_an_mmdg_config(tmp_path):
    """mmdet's own init_detector + inference_detector on an mmdg detection config, for an array and a file: the
    config's data need not exist (init_detector builds the test dataset lazily for its metainfo), and mmdet finds
    the test pipeline inside MultiDomainDataset (it stopped with "Cannot find `pipeline` in `test_dataloader`")."""
    import cv2
    import numpy as np
    from mmdet.apis import inference_detector, init_detector
    model = init_detector(os.path.join(REPO, 'configs', 'demo_det', 'faster-rcnn_vit-tiny.py'), device='cpu')
    image = np.zeros((128, 256, 3), np.uint8)
    cv2.imwrite(str(tmp_path / 'a.jpg'), image)
    for source in (image, str(tmp_path / 'a.jpg')):
        result = inference_detector(model, source)
        assert result.pred_instances.bboxes.shape[1] == 4
