"""tools/infer.py through its real command line and mmdg.apis' init_model / inference_model: labelled
pictures and raw label maps for a folder (kept sub-folders) and for one real-format image; arrays in,
the same prediction out."""
import json
import os.path as osp

import numpy as np
import torch
from PIL import Image

from conftest import invoke_tool


def _infer(*args):
    return invoke_tool('infer.py', *args)


def test_folder_and_real_format_image(demo_model, fixtures_dir, tmp_path):
    config, ckpt, tmp = demo_model
    images = osp.join(str(tmp), 'data', 'fog', 'leftImg8bit', 'val')
    out = tmp_path / 'out'
    proc = _infer(config, ckpt, images, '--out', str(out))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert '2 image(s)' in proc.stdout and '100%' in proc.stderr  # the progress bar of a folder
    assert '(train_id: pixel value = the 19 Cityscapes train ids' in proc.stdout  # one default, as tools/test.py
    assert json.load(open(out / 'pred' / 'label_encoding.json'))['encoding'] == 'train_id'
    preds = sorted((out / 'pred').rglob('*.png'))
    vis = sorted((out / 'vis').rglob('*.png'))
    assert len(preds) == len(vis) == 2
    assert [p.relative_to(out / 'pred') for p in preds] == [v.relative_to(out / 'vis') for v in vis]
    source = osp.join(images, str(preds[0].relative_to(out / 'pred')))  # the demo's images are PNGs
    label = np.asarray(Image.open(preds[0]))
    assert label.ndim == 2 and label.shape == np.asarray(Image.open(source)).shape[:2] and label.max() < 19
    assert np.asarray(Image.open(vis[0])).shape[2] == 3

    frame = sorted(__import__('glob').glob(osp.join(fixtures_dir, 'cityscapes', 'leftImg8bit', 'val', '*', '*.png')))[0]
    proc = _infer(config, ckpt, frame, '--out', str(tmp_path / 'one'))
    assert proc.returncode == 0, proc.stderr[-3000:]
    name = osp.splitext(osp.basename(frame))[0] + '.png'
    assert (tmp_path / 'one' / 'vis' / name).is_file()
    assert np.asarray(Image.open(tmp_path / 'one' / 'pred' / name)).shape == np.asarray(Image.open(frame)).shape[:2]

def test_missing_input_is_a_message(demo_model, tmp_path):
    config, ckpt, _ = demo_model
    res = _infer(config, ckpt, tmp_path / 'nothing', '--out', tmp_path / 'x')
    assert res.returncode == 1 and 'no such image or folder' in res.stderr


def test_api_on_files_and_arrays(demo_model):
    import mmcv
    from mmdg.apis.inference import draw_result, inference_model, init_model
    config, ckpt, tmp = demo_model
    model = init_model(config, ckpt)
    assert model.dataset_meta['classes'][6] == 'traffic light'
    path = sorted(__import__('glob').glob(osp.join(str(tmp), 'data', 'fog', 'leftImg8bit', 'val', '*', '*.png')))[0]
    from_file = inference_model(model, path)
    from_array = inference_model(model, [mmcv.imread(path)])[0]
    assert torch.equal(from_file.pred_sem_seg.data, from_array.pred_sem_seg.data)
    picture = draw_result(model, path, from_file)
    assert picture.shape == mmcv.imread(path).shape


def test_images_whose_outputs_would_collide_are_refused(demo_model, tmp_path):
    """a.jpg and a.png in one folder both wrote pred/a.png (the second replacing the first) while the count said
    two images; now refused before anything is predicted."""
    config, ckpt, _ = demo_model
    for ext in ('.jpg', '.png'):
        Image.fromarray(np.zeros((64, 128, 3), np.uint8)).save(tmp_path / f'a{ext}')
    res = _infer(config, ckpt, tmp_path, '--out', tmp_path / 'out')
    assert res.returncode == 1 and 'would write the same output files (a.png)' in res.stderr
    assert not (tmp_path / 'out').exists()
