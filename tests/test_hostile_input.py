"""Hostile and broken input through the command-line tools: each case ends with one specific message
(no traceback), exit status 1 and no partial output. docs/reliability.md lists the same cases."""
import os
import pickle

import cv2
import numpy as np
import pytest
import torch
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


def _checked_cfg(tmp_path, root, **kw):
    """The demo config (whose loaders are mmdg's checked ones) on the layout under ``root``, with mmdg's
    dataset class."""
    cfg = demo_config('lora', data_root=root, work_dir=str(tmp_path / 'work'), max_iters=2, num_workers=0, **kw)
    cfg.train_dataloader.batch_size = 2
    cfg.train_cfg.val_begin = 3
    cfg.train_dataloader.dataset.type = 'CityscapesDGDataset'
    cfg.val_dataloader = cfg.val_cfg = cfg.val_evaluator = None  # the layouts here hold a training split only
    path = tmp_path / 'cfg.py'
    cfg.dump(str(path))
    return str(path), cfg


@pytest.fixture
def small_layout(tmp_path):
    from mmdg.datasets.synthetic import write_cityscapes_layout
    root = tmp_path / 'data'
    write_cityscapes_layout(str(root), domains=('source',), splits=dict(train=4), progress=False)
    return root


def _files(root, pattern):
    return sorted((root / 'source').rglob(pattern))


@pytest.mark.tool
def test_typo_in_a_module_name(tmp_path):
    cfg = tmp_path / 'typo.py'
    cfg.write_text(f"_base_ = {os.path.join(REPO, 'configs/demo/full.py')!r}\nmodel = dict(backbone=dict(type='TimmVit'))\n")
    _clean_failure(*_tool('tools/train.py', cfg, '--work-dir', tmp_path / 'w'), 'TimmVit is not in the mmdg::model registry')


@pytest.mark.tool
def test_adapter_that_matches_nothing(tmp_path):
    cfg = tmp_path / 'nomatch.py'
    cfg.write_text(f"_base_ = {os.path.join(REPO, 'configs/demo/lora.py')!r}\n"
                   "model = dict(backbone=dict(adapter=dict(targets=('attn.qkvv',))))\n")
    _clean_failure(*_tool('tools/train.py', cfg, '--work-dir', tmp_path / 'w'), "['attn.qkvv']", 'matched no nn.Linear')


@pytest.mark.tool
def test_rank_larger_than_the_matrix(tmp_path):
    cfg = tmp_path / 'rank.py'
    cfg.write_text(f"_base_ = {os.path.join(REPO, 'configs/demo/sora.py')!r}\n"
                   "model = dict(backbone=dict(adapter=dict(r=4096)))\n")
    code, out = _tool('tools/train.py', cfg, '--work-dir', tmp_path / 'w')
    _clean_failure(code, out, '4096')


@pytest.fixture(scope='module')
def trained(tmp_path_factory, demo_data):
    tmp = tmp_path_factory.mktemp('trained')
    cfg = demo_config('lora', data_root=demo_data, work_dir=str(tmp / 'work'), max_iters=1, num_workers=0)
    cfg.train_dataloader.batch_size = 2
    cfg.train_cfg.val_begin = 2
    cfg.dump(str(tmp / 'cfg.py'))
    from mmengine.runner import Runner
    Runner.from_cfg(cfg).train()
    return str(tmp / 'cfg.py'), tmp / 'work' / 'iter_1.pth'


@pytest.mark.tool
def test_checkpoint_of_another_architecture(tmp_path, trained):
    cfg, ckpt = trained
    other = Config.fromfile(cfg)
    other.model.backbone.model_kwargs.embed_dim = 96  # a narrower ViT: same keys, other shapes
    other.model.backbone.model_kwargs.num_heads = 2
    other.model.decode_head.in_channels = [96] * len(other.model.decode_head.in_channels)
    other.dump(str(tmp_path / 'other.py'))
    out_dir = tmp_path / 'eval'
    _clean_failure(*_tool('tools/cross_domain_eval.py', tmp_path / 'other.py', ckpt, '--out-dir', out_dir),
                   'does not fit this model', 'of another shape')
    assert not out_dir.exists()
    _clean_failure(*_tool('tools/test.py', tmp_path / 'other.py', ckpt, '--work-dir', tmp_path / 't'),
                   'does not fit this model')


def test_truncated_checkpoint(tmp_path, trained):
    cfg, ckpt = trained
    cut = tmp_path / 'cut.pth'
    data = ckpt.read_bytes()
    cut.write_bytes(data[:len(data) // 3])
    _clean_failure(*_tool('tools/cross_domain_eval.py', cfg, cut, '--out-dir', tmp_path / 'eval'), 'truncated')
    _clean_failure(*_tool('tools/test.py', cfg, cut, '--work-dir', tmp_path / 't'), 'truncated')


class _RunsCode:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, 'w'))  # would create the marker file while unpickling


def test_pickle_carrying_code(tmp_path, trained):
    cfg, _ = trained
    marker = tmp_path / 'pwned'
    evil = tmp_path / 'evil.pth'
    torch.save(dict(state_dict={}, payload=_RunsCode(str(marker))), evil, pickle_protocol=pickle.DEFAULT_PROTOCOL)
    for tool in (['tools/cross_domain_eval.py', cfg, evil, '--out-dir', tmp_path / 'e'],
                 ['tools/merge_adapters.py', cfg, evil, tmp_path / 'm.pth']):
        _clean_failure(*_tool(*tool), 'refusing to load checkpoint')
    assert not marker.exists()


@pytest.mark.tool
def test_missing_label_files(tmp_path, small_layout):
    for p in _files(small_layout, '*_gtFine_labelTrainIds.png')[:2]:
        p.unlink()
    cfg, _ = _checked_cfg(tmp_path, str(small_layout))
    _clean_failure(*_tool('tools/train.py', cfg), '2 of 4 label files are missing')
    assert not list((tmp_path / 'work').glob('*.pth'))


@pytest.mark.tool
def test_label_value_out_of_range(tmp_path, small_layout):
    label = _files(small_layout, '*_gtFine_labelTrainIds.png')[0]
    seg = cv2.imread(str(label), cv2.IMREAD_UNCHANGED)
    seg[:4, :4] = 33
    cv2.imwrite(str(label), seg)
    cfg, _ = _checked_cfg(tmp_path, str(small_layout))
    code, out = _tool('tools/train.py', cfg, '--cfg-options', 'train_dataloader.num_workers=1',
                      'train_dataloader.persistent_workers=False')  # the error crosses a worker process
    _clean_failure(code, out, 'LabelValueError', label.name, 'label value(s) [33]')
    assert not list((tmp_path / 'work').glob('*.pth'))


@pytest.mark.tool
def test_image_that_cannot_be_decoded(tmp_path, small_layout):
    img = _files(small_layout, '*_leftImg8bit.png')[0]
    img.write_bytes(img.read_bytes()[:100])  # a download cut short
    cfg, _ = _checked_cfg(tmp_path, str(small_layout))
    _clean_failure(*_tool('tools/train.py', cfg), 'ImageDecodeError', img.name, 'cannot be decoded')


@pytest.mark.tool
def test_nan_loss_stops_with_the_iteration_and_keeps_the_last_good_checkpoint(tmp_path, small_layout):
    cfg, _ = _checked_cfg(tmp_path, str(small_layout))
    code, out = _tool('tools/train.py', cfg)  # iterations 1-2, checkpoint iter_2.pth
    assert code == 0, out[-3000:]
    good = tmp_path / 'work' / 'iter_2.pth'
    before = good.read_bytes()
    # from iteration 3 on, std 0 turns every input into inf: the loss becomes NaN
    code, out = _tool('tools/train.py', cfg, '--resume', '--cfg-options', 'train_cfg.max_iters=4',
                      'default_hooks.checkpoint.interval=1', 'model.data_preprocessor.std=[0,0,0]')
    _clean_failure(code, out, 'NonFiniteLossError', 'at iteration 3', f'last good checkpoint is {good}')
    assert good.read_bytes() == before
    assert sorted(p.name for p in (tmp_path / 'work').glob('*.pth')) == ['iter_2.pth']
    assert (tmp_path / 'work' / 'last_checkpoint').read_text().strip() == str(good)


@pytest.mark.tool
def test_layout_without_images(tmp_path):
    (tmp_path / 'empty' / 'source' / 'leftImg8bit').mkdir(parents=True)
    cfg, _ = _checked_cfg(tmp_path, str(tmp_path / 'empty'))
    _clean_failure(*_tool('tools/train.py', cfg), 'DatasetLayoutError', 'does not exist')


def test_config_file_that_does_not_exist(tmp_path):
    code, out = _tool('tools/train.py', tmp_path / 'nope.py')
    assert code != 0 and 'nope.py does not exist' in out and 'Traceback' not in out


@pytest.mark.parametrize('tool', ['tools/cross_domain_eval.py', 'tools/infer.py'])
@pytest.mark.parametrize('size', ['0', '-2'])
def test_batch_size_below_one_is_refused(tool, size, tmp_path):
    """A batch size of 0 ran on zero images and printed an empty result; now argparse refuses it."""
    args = ['cfg.py', 'ckpt.pth'] if 'cross_domain' in tool else ['cfg.py', 'ckpt.pth', str(tmp_path), '--out', str(tmp_path / 'o')]
    res = invoke_tool(tool, *args, '--batch-size', size)
    assert res.returncode == 2 and f'argument --batch-size: must be at least 1, got {int(size)}' in res.stderr
    assert 'Traceback' not in res.stderr


def test_integer_tensors_are_not_pretrained_weights(tmp_path):
    """A safetensors file of integer tensors with the right names and shapes was loaded as weights (cast
    silently); the key check now names them."""
    from safetensors.torch import save_file
    from conftest import tiny_vit
    from mmdg.convert.vit import CheckpointError, load_vit_weights
    ref = tiny_vit('dinov2')
    save_file({k: (v * 100).to(torch.int64).contiguous() for k, v in ref.state_dict().items()},
              str(tmp_path / 'ints.safetensors'))
    with pytest.raises(CheckpointError, match=r'not floating-point weights \(\d+\): blocks\.0\.attn\.proj\.bias: '
                                              r'checkpoint torch\.int64 vs model torch\.float32'):
        load_vit_weights(tiny_vit('dinov2'), str(tmp_path / 'ints.safetensors'))


def test_repeated_entries_in_a_split_list_are_refused(tmp_path):
    """A split list naming an image twice was scored (or trained on) twice while the counts looked right."""
    from mmdg.datasets import CityscapesDGDataset, DiverseWeatherDataset
    from mmdg.datasets.converters import DatasetLayoutError
    from mmdg.datasets.synthetic import write_cityscapes_layout
    from mmdg.datasets.voc_writer import write_synthetic_voc
    write_synthetic_voc(str(tmp_path / 'dwd'), {'fog': 'fog'}, dict(test=2), size=(64, 128))
    split = tmp_path / 'dwd' / 'fog' / 'VOC2007' / 'ImageSets' / 'Main' / 'test.txt'
    first = split.read_text().split()[0]
    assert len(DiverseWeatherDataset(data_root=str(tmp_path / 'dwd'), domain='fog', split='test', pipeline=[])) == 2
    split.write_text(split.read_text() + first + '\n')
    with pytest.raises(DatasetLayoutError, match=rf'test\.txt lists 1 image\(s\) more than once, e\.g\. {first}'):
        DiverseWeatherDataset(data_root=str(tmp_path / 'dwd'), domain='fog', split='test', pipeline=[])

    root = tmp_path / 'cs'
    write_cityscapes_layout(str(root), domains=('source',), splits=dict(train=2), progress=False)
    names = sorted(p.name[:-len('_leftImg8bit.png')] for p in (root / 'source').rglob('*_leftImg8bit.png'))
    lst = tmp_path / 'list.txt'
    lst.write_text(f'source/{names[0]}\nsource/{names[1]}\nsource/{names[0]}\n')
    with pytest.raises(DatasetLayoutError, match=r'list\.txt lists 1 image\(s\) more than once'):
        CityscapesDGDataset(data_root=str(root / 'source'), split='train', ann_file=str(lst), pipeline=[])
    lst.write_text(f'source/{names[0]}\nsource/{names[1]}\n')
    assert len(CityscapesDGDataset(data_root=str(root / 'source'), split='train', ann_file=str(lst), pipeline=[])) == 2


@pytest.mark.tool
def test_labels_that_are_all_ignore_stop_the_run(tmp_path, small_layout):
    """Labels that are all 255 trained to loss 0 and accuracy 100 and exited 0; now the run stops after its
    first batches, before a checkpoint, naming the cause."""
    for label in _files(small_layout, '*_gtFine_labelTrainIds.png'):
        seg = cv2.imread(str(label), cv2.IMREAD_UNCHANGED)
        cv2.imwrite(str(label), np.full_like(seg, 255))
    cfg, _ = _checked_cfg(tmp_path, str(small_layout))
    code, out = _tool('tools/train.py', cfg)
    _clean_failure(code, out, 'DataModelError', 'training batches hold no labelled pixel', 'every label is 255')
    assert not list((tmp_path / 'work').glob('*.pth'))


def test_preprocessor_size_beside_size_divisor_is_named(tmp_path):
    """mmseg asserts, at the first training batch and naming nothing, that only one of the two is set."""
    code, out = _tool('tools/train.py', 'configs/demo/sora.py', '--work-dir', tmp_path / 'w', '--cfg-options',
                      'model.data_preprocessor.size=[64,64]', 'model.data_preprocessor.size_divisor=32')
    assert code == 1 and 'model.data_preprocessor has size=(64, 64) and size_divisor=32: give one' in out, out[-2000:]
    assert 'Traceback' not in out and not (tmp_path / 'w').exists()


def test_a_strip_image_is_named_and_a_checkpoint_without_classes_infers(demo_model, tmp_path):
    """An 8192x2 image ended in OpenCV's `inv_scale_x > 0` assertion (no file named); a checkpoint without
    dataset_meta made tools/infer.py fail looking up the dataset's classes in the wrong registry."""
    import cv2
    import numpy as np
    import torch
    config, ckpt, _ = demo_model
    bare = tmp_path / 'bare.pth'  # the weights only: classes and palette come from the config's dataset
    torch.save(dict(state_dict=torch.load(ckpt, weights_only=False)['state_dict']), bare)
    cv2.imwrite(str(tmp_path / 'strip.png'), np.zeros((2, 8192, 3), np.uint8))
    code, out = _tool('tools/infer.py', config, bare, tmp_path / 'strip.png', '--out', tmp_path / 'o')
    assert code == 1 and 'strip.png: an image of 8192x2 px (WxH)' in out and 'Traceback' not in out, out[-2000:]
    cv2.imwrite(str(tmp_path / 'ok.png'), np.zeros((64, 128, 3), np.uint8))
    code, out = _tool('tools/infer.py', config, bare, tmp_path / 'ok.png', '--out', tmp_path / 'o2')
    assert code == 0, out[-2000:]
