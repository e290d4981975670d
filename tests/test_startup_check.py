"""The start-up check (``DataModelCheckHook``): model and data that disagree stop a run before its first
iteration with one line naming the config key or the file (docs/reliability.md, "Model and data agree")."""
import os

import cv2
import pytest
from mmengine.config import Config

from conftest import REPO, invoke_tool
from mmdg.apis.demo import demo_config



def _tool(*args):
    res = invoke_tool(*args)
    return res.returncode, res.stdout + res.stderr


def _clean_failure(code, out, *expected):
    assert code == 1, out[-3000:]
    assert 'Traceback' not in out, out[-3000:]
    for text in expected:
        assert text in out, out[-3000:]


@pytest.fixture
def layout(tmp_path):
    """Training images of the source style and validation images of two target styles."""
    from mmdg.datasets.synthetic import write_cityscapes_layout
    root = tmp_path / 'data'
    write_cityscapes_layout(str(root), domains=('source',), splits=dict(train=4), progress=False)
    write_cityscapes_layout(str(root), domains=('fog', 'night'), splits=dict(val=1), progress=False)
    return root


def _config(tmp_path, root, method='lora'):
    """The demo config (with its checked loaders) on ``root``: 2 iterations, validation on fog and night."""
    cfg = demo_config(method, data_root=str(root), work_dir=str(tmp_path / 'work'), max_iters=2, num_workers=0)
    cfg.train_dataloader.batch_size = 2
    domains = cfg.val_dataloader.dataset.domains
    cfg.val_dataloader.dataset.domains = {k: domains[k] for k in ('fog', 'night')}
    cfg.val_evaluator.unseen = ['fog', 'night']
    cfg.test_dataloader = cfg.val_dataloader
    cfg.test_evaluator = cfg.val_evaluator
    path = tmp_path / 'cfg.py'
    cfg.dump(str(path))
    return path


def _halve_first_label(root):
    label = sorted((root / 'source').rglob('*_gtFine_labelTrainIds.png'))[0]
    seg = cv2.imread(str(label), cv2.IMREAD_UNCHANGED)
    cv2.imwrite(str(label), cv2.resize(seg, (seg.shape[1] // 2, seg.shape[0] // 2), interpolation=cv2.INTER_NEAREST))
    return label


def _built(cfg_path, **model_changes):
    """The config's model and training set, built as the runner builds them."""
    from mmengine.registry import init_default_scope
    init_default_scope('mmdg')
    from mmdg.registry import DATASETS, MODELS
    cfg = Config.fromfile(str(cfg_path))
    cfg.model.decode_head.update(model_changes)
    return MODELS.build(cfg.model), DATASETS.build(cfg.train_dataloader.dataset)


# ------------------------------------------------------------------------------ through tools/train.py
@pytest.mark.tool
def test_num_classes_of_the_head_and_the_dataset_differ(tmp_path, layout):
    cfg = _config(tmp_path, layout)
    code, out = _tool('tools/train.py', cfg, '--cfg-options', 'model.decode_head.num_classes=40')
    _clean_failure(code, out, 'DataModelError', 'model.decode_head.num_classes is 40', 'has 19 classes',
                   'model.decode_head.num_classes=19')
    assert not list((tmp_path / 'work').glob('*.pth'))


@pytest.mark.tool
def test_labels_at_half_the_image_size(tmp_path, layout):
    label = _halve_first_label(layout)
    code, out = _tool('tools/train.py', _config(tmp_path, layout))
    _clean_failure(code, out, 'DataModelError', str(label), '128x64 (WxH)', 'is 256x128', 'check_dataset.py')
    assert not list((tmp_path / 'work').glob('*.pth'))


@pytest.mark.tool
def test_labels_at_half_size_stop_tools_test_before_the_metric(tmp_path, layout):
    """Before: ``tools/test.py`` crashed inside mmseg's metric with an ``IndexError``."""
    import torch
    label = sorted((layout / 'night').rglob('*_gtFine_labelTrainIds.png'))[0]
    seg = cv2.imread(str(label), cv2.IMREAD_UNCHANGED)
    cv2.imwrite(str(label), cv2.resize(seg, (seg.shape[1] // 2, seg.shape[0] // 2), interpolation=cv2.INTER_NEAREST))
    cfg = _config(tmp_path, layout)
    model, _ = _built(cfg)
    torch.save(dict(state_dict=model.state_dict()), tmp_path / 'model.pth')
    code, out = _tool('tools/test.py', cfg, tmp_path / 'model.pth', '--work-dir', tmp_path / 'test')
    _clean_failure(code, out, 'DataModelError', "test_dataloader domain 'night'", str(label), '128x64 (WxH)')


@pytest.mark.tool
def test_an_empty_target_domain_is_named(tmp_path, layout):
    for f in (layout / 'night' / 'leftImg8bit').rglob('*.png'):
        f.unlink()  # the folder is there, its images are not (an unzip that went elsewhere)
    code, out = _tool('tools/train.py', _config(tmp_path, layout))
    _clean_failure(code, out, 'DataModelError', 'is empty: no image found under',
                   str(layout / 'night' / 'leftImg8bit' / 'val'))
    assert not list((tmp_path / 'work').glob('*.pth'))


# -------------------------------------------------------------------------- the check and the loaders
def test_the_check_is_in_every_run():
    """The default runtimes list the hook; the tools add it (and the checkpoint digest / fit hooks) to an mmdg
    config whose runtime does not, once."""
    from mmdg.utils.tool_config import add_startup_check
    for name in ('demo/lora.py', 'demo_det/faster-rcnn_vit-tiny.py'):
        hooks = Config.fromfile(os.path.join(REPO, 'configs', name)).custom_hooks
        assert [h['type'] for h in hooks].count('DataModelCheckHook') == 1
    cfg = Config(dict(default_scope='mmdg', custom_hooks=[dict(type='NonFiniteLossHook')]))
    assert [h['type'] for h in add_startup_check(add_startup_check(cfg)).custom_hooks] == [
        'NonFiniteLossHook', 'DataModelCheckHook', 'CheckpointDigestHook', 'CheckpointFitHook']


@pytest.mark.tool
def test_fewer_classes_and_another_ignore_index(tmp_path, layout):
    from mmdg.engine import DataModelError
    from mmdg.engine.startup_check import check_data_model
    cfg = _config(tmp_path, layout)
    model, data = _built(cfg, num_classes=5)  # would crash mid-run (a label value beyond the logits)
    with pytest.raises(DataModelError, match=r'model.decode_head.num_classes is 5, .* has 19 classes'):
        check_data_model(model, data, 'train_dataloader')
    model, data = _built(cfg, ignore_index=0)  # would train class 0 as 'ignored'
    with pytest.raises(DataModelError, match=r'model.decode_head.ignore_index is 0, .* ignores label 255'):
        check_data_model(model, data, 'train_dataloader')
    model, data = _built(cfg)
    check_data_model(model, data, 'train_dataloader')


@pytest.mark.tool
def test_checked_loader_refuses_a_label_of_another_size(tmp_path, layout):
    """Wherever labels are loaded (training or test pipeline, a set the start-up sample missed)."""
    from mmdg.datasets.converters import LabelSizeError
    label = _halve_first_label(layout)
    _, data = _built(_config(tmp_path, layout))
    index = next(i for i in range(len(data)) if data.get_data_info(i)['seg_map_path'] == str(label))
    with pytest.raises(LabelSizeError, match=rf'{label.name}: label of size 128x64 \(WxH\), its image .* is 256x128'):
        data[index]
    from mmdg.registry import TRANSFORMS
    test_load = [TRANSFORMS.build(t) for t in Config.fromfile(str(tmp_path / 'cfg.py')).test_pipeline[:3]]
    results = dict(img_path=data.get_data_info(index)['img_path'], seg_map_path=str(label), seg_fields=[],
                   reduce_zero_label=False)
    with pytest.raises(LabelSizeError):  # loaded after the image was resized: compared with the original size
        for t in test_load:
            results = t(results)


@pytest.mark.tool
def test_checked_loader_names_a_corrupt_label(tmp_path, layout):
    """A label cut short (before: ``AttributeError: 'NoneType' object has no attribute 'squeeze'``)."""
    from mmdg.datasets import ImageDecodeError
    label = sorted((layout / 'source').rglob('*_gtFine_labelTrainIds.png'))[1]
    label.write_bytes(label.read_bytes()[:60])
    _, data = _built(_config(tmp_path, layout))
    index = next(i for i in range(len(data)) if data.get_data_info(i)['seg_map_path'] == str(label))
    with pytest.raises(ImageDecodeError, match=rf'{label.name}: label file cannot be decoded'):
        data[index]


@pytest.mark.tool
def test_checked_loader_names_a_missing_image(tmp_path, layout):
    from mmdg.datasets import ImageDecodeError
    _, data = _built(_config(tmp_path, layout))
    image = data.get_data_info(2)['img_path']
    os.remove(image)  # gone after the dataset was listed (or a link to it broke)
    with pytest.raises(ImageDecodeError, match=rf'{os.path.basename(image)}: does not exist'):
        data[2]
