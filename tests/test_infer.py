"""tools/infer.py through its real command line and mmdg.apis' init_model / inference_model: labelled
pictures and raw label maps for a folder (kept sub-folders) and for one real-format image; arrays in,
the same prediction out."""
import os.path as osp
import subprocess
import sys

import numpy as np
import torch
from PIL import Image

from conftest import REPO
from test_test_tool import demo_model  # noqa: F401 (a module-scoped fixture: config and checkpoint)


def _infer(*args):
    return subprocess.run([sys.executable, osp.join(REPO, 'tools', 'infer.py'), *args], cwd=REPO, capture_output=True,
                          text=True)


def test_folder_and_real_format_image(demo_model, fixtures_dir, tmp_path):  # noqa: F811
    config, ckpt, tmp = demo_model
    images = osp.join(str(tmp), 'data', 'fog', 'leftImg8bit', 'val')
    out = tmp_path / 'out'
    proc = _infer(config, ckpt, images, '--out', str(out))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert '2 image(s)' in proc.stdout and '100%' in proc.stderr  # the progress bar of a folder
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

def test_missing_input_is_a_message(demo_model, tmp_path, capsys):  # noqa: F811
    import pytest
    sys.path.insert(0, REPO)
    from tools.infer import main
    config, ckpt, _ = demo_model
    with pytest.raises(SystemExit) as exc:
        main([config, ckpt, str(tmp_path / 'nothing'), '--out', str(tmp_path / 'x')])
    assert exc.value.code == 1 and 'no such image or folder' in capsys.readouterr().err


def test_api_on_files_and_arrays(demo_model):  # noqa: F811
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
