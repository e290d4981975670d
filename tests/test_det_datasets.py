"""Diverse-Weather-style VOC data: the Cityscapes converter (real fixture frame and generated instance
maps), the generator's VOC writer read back by the datasets, folder-name variants and clear errors."""
import os
import os.path as osp
import shutil

import cv2
import numpy as np
import pytest
from mmengine.registry import init_default_scope

from mmdg.datasets import CityscapesDetDataset, DiverseWeatherDataset
from mmdg.datasets.converters import DatasetLayoutError
from mmdg.datasets.voc_writer import cityscapes_to_voc, instance_boxes, write_synthetic_voc

init_default_scope('mmdg')

#: The fixture frame's boxes from its README, (x1, y1, x2, y2) inclusive pixels.
FIXTURE_BOXES = sorted([('car', (156, 38, 220, 71)), ('car', (128, 46, 145, 62)), ('car', (126, 51, 127, 53)),
                        ('person', (119, 51, 120, 55)), ('person', (145, 47, 149, 58)),
                        ('person', (150, 47, 152, 57)), ('person', (153, 47, 156, 58))])


def _boxes(ds, i=0):
    classes = ds.metainfo['classes']
    return sorted((classes[o['bbox_label']], tuple(int(v) for v in o['bbox'])) for o in ds.get_data_info(i)['instances'])


def test_real_cityscapes_frame_to_dwd(fixtures_dir, tmp_path):
    from conftest import invoke_tool
    res = invoke_tool('dataset_converters/cityscapes_to_dwd.py', osp.join(fixtures_dir, 'cityscapes'),
                      tmp_path / 'dwd' / 'cityscapes', '--split', 'val')
    assert res.returncode == 0, res.stderr[-2000:]
    ds = DiverseWeatherDataset(data_root=str(tmp_path / 'dwd'), domain='cityscapes', split='val', pipeline=[])
    assert len(ds) == 1 and _boxes(ds) == FIXTURE_BOXES
    info = ds.get_data_info(0)
    assert (info['width'], info['height']) == (256, 128)
    img = cv2.imread(info['img_path'])
    assert img.shape == (128, 256, 3)
    src = cv2.imread(osp.join(fixtures_dir, 'cityscapes', 'leftImg8bit', 'val', 'frankfurt',
                              'frankfurt_000000_000294_leftImg8bit.png'))
    assert np.abs(img.astype(int) - src).mean() < 3  # the same picture, JPEG-encoded


def test_generated_instance_maps(tmp_path):
    """labelId * 1000 + k instances; a crowd region (bare label id) and non-detection classes get no box."""
    root = tmp_path / 'cs'
    inst = np.full((40, 60), 7, np.uint16)        # road
    inst[0:10, 0:20] = 26                         # a car crowd: no instance, no box
    inst[12:20, 5:15] = 26001                     # car
    inst[22:30, 30:41] = 31000                    # train: not a DWD class
    inst[2:9, 40:43] = 32000                      # motorcycle -> motor
    inst[30:38, 50:58] = 33005                    # bicycle -> bike
    inst[35, 2] = 24000                           # a one-pixel person
    for sub, name, arr in (('gtFine', 'x_000000_000001_gtFine_instanceIds.png', inst),
                           ('leftImg8bit', 'x_000000_000001_leftImg8bit.png', np.zeros((40, 60, 3), np.uint8))):
        os.makedirs(root / sub / 'train' / 'x', exist_ok=True)
        cv2.imwrite(str(root / sub / 'train' / 'x' / name), arr)
    assert sorted((o['name'], tuple(o['bbox'])) for o in instance_boxes(inst, 'dwd', min_pixels=2)) == [
        ('bike', (50, 30, 58, 38)), ('car', (5, 12, 15, 20)), ('motor', (40, 2, 43, 9))]
    _, n_img, n_box = cityscapes_to_voc(str(root), str(tmp_path / 'out' / 'cs8'), 'train', 'cityscapes8')
    assert (n_img, n_box) == (1, 5)
    ds = CityscapesDetDataset(data_root=str(tmp_path / 'out'), domain='cs8', split='train', pipeline=[])
    assert _boxes(ds) == [('bicycle', (50, 30, 57, 37)), ('car', (5, 12, 14, 19)), ('motorcycle', (40, 2, 42, 8)),
                          ('person', (2, 35, 2, 35)), ('train', (30, 22, 40, 29))]


def test_generator_boxes_round_trip_and_folder_spellings(tmp_path):
    from mmdg.datasets.synthetic import make_sample
    write_synthetic_voc(str(tmp_path), {'Night-Sunny': 'night'}, dict(train=3, test=2), size=(64, 128),
                        difficult_below=6)
    names = dict(car='car', truck='truck', bus='bus', person='person', rider='rider', bicycle='bike')
    for spelling in ('night_sunny', 'Night-Sunny', 'NIGHTSUNNY', 'night-sunny'):
        ds = DiverseWeatherDataset(data_root=str(tmp_path), domain=spelling, split='test', pipeline=[])
        assert len(ds) == 2
    for i in range(2):
        _, _, boxes = make_sample('night', 'val', i, (64, 128))
        expected = sorted((names[b['label']], (b['bbox'][0], b['bbox'][1], b['bbox'][2] - 1, b['bbox'][3] - 1),
                           int(min(b['bbox'][2] - b['bbox'][0], b['bbox'][3] - b['bbox'][1]) < 6)) for b in boxes)
        classes = ds.metainfo['classes']
        got = sorted((classes[o['bbox_label']], tuple(o['bbox']), o['ignore_flag'])
                     for o in ds.get_data_info(i)['instances'])
        assert got == expected and got
    all_ds = DiverseWeatherDataset(data_root=str(tmp_path), domain='night_sunny', split='all', pipeline=[])
    assert len(all_ds) == 5


def test_relative_data_root(tmp_path, monkeypatch):
    write_synthetic_voc(str(tmp_path / 'data'), {'fog': 'fog'}, dict(test=1), size=(64, 128))
    monkeypatch.chdir(tmp_path)
    ds = DiverseWeatherDataset(data_root='data', domain='fog', split='test', pipeline=[])
    assert osp.isfile(ds.get_data_info(0)['img_path'])


def test_clear_errors(tmp_path, fixtures_dir):
    voc_root = osp.join(fixtures_dir)  # fixtures/voc/VOC2007 holds the real VOC 2007 sample (dog, person)
    with pytest.raises(ValueError, match=r"000001\.xml: unknown class 'dog'"):
        DiverseWeatherDataset(data_root=voc_root, domain='voc', split='test', pipeline=[])
    ds = DiverseWeatherDataset(data_root=voc_root, domain='voc', split='test', ignore_classes=['dog'], pipeline=[])
    assert _boxes(ds) == [('person', (7, 11, 351, 497))]  # VOC's 1-based (8, 12, 352, 498)
    with pytest.raises(DatasetLayoutError, match=r"no folder for domain 'dusk_rainy'.*'voc'"):
        DiverseWeatherDataset(data_root=voc_root, domain='dusk_rainy', pipeline=[])
    with pytest.raises(DatasetLayoutError, match=r"ImageSets/Main/train\.txt does not exist.*\['test', 'trainval'\]"):
        DiverseWeatherDataset(data_root=voc_root, domain='voc', split='train', pipeline=[])
    with pytest.raises(DatasetLayoutError, match='does not exist'):
        DiverseWeatherDataset(data_root=str(tmp_path / 'nowhere'), domain='voc', pipeline=[])
    broken = tmp_path / 'broken'
    shutil.copytree(osp.join(fixtures_dir, 'voc'), broken / 'Daytime-Clear')
    shutil.rmtree(broken / 'Daytime-Clear' / 'VOC2007' / 'JPEGImages')
    with pytest.raises(DatasetLayoutError, match=r'Daytime-Clear/VOC2007/JPEGImages does not exist'):
        DiverseWeatherDataset(data_root=str(broken), domain='daytime_clear', split='test', pipeline=[])
    with pytest.raises(DatasetLayoutError, match=r'gtFine/train does not exist'):
        cityscapes_to_voc(osp.join(fixtures_dir, 'cityscapes'), str(tmp_path / 'out'), split='train')
    with pytest.raises(ValueError, match='inside the source'):
        cityscapes_to_voc(osp.join(fixtures_dir, 'cityscapes'), osp.join(fixtures_dir, 'cityscapes', 'x'))


@pytest.mark.parametrize('edit, message', [
    (lambda x: x[:len(x) // 2], r'not a readable VOC XML file \(truncated'),
    (lambda x: x.replace('<name>', '<nome>').replace('</name>', '</nome>'), r'object 0 has no <name>'),
    (lambda x: __import__('re').sub(r'<bndbox>.*?</bndbox>', '', x, flags=16), r'object 0 \(\w+\) has no <bndbox>'),
    (lambda x: __import__('re').sub(r'<xmin>[^<]*</xmin>', '<xmin></xmin>', x), r"<xmin> is '', not a number"),
    (lambda x: __import__('re').sub(r'<difficult>[^<]*</difficult>', '<difficult/>', x), r'<difficult> is None'),
    (lambda x: __import__('re').sub(r'<xmin>[^<]*</xmin>', '<xmin>500</xmin>', x, count=1), r'object 0: inverted box'),
    (lambda x: __import__('re').sub(r'<ymin>[^<]*</ymin>(.*?)<ymax>[^<]*</ymax>', r'<ymin>900</ymin>\1<ymax>950</ymax>',
                                    x, count=1, flags=16), r'object 0: box .* lies outside the 128x64 image'),
])
def test_broken_annotations_name_the_file(tmp_path, edit, message):
    """Pascal-VOC files mmdet reads with a TypeError, an AttributeError or a bare ParseError (no file named), or
    accepts and fails later with "Cannot find valid image after 1000": each names the file and the object."""
    from mmdg.datasets.layouts import AnnotationError
    write_synthetic_voc(str(tmp_path / 'dwd'), {'fog': 'fog'}, dict(train=2), size=(64, 128))
    ann = next((tmp_path / 'dwd' / 'fog').rglob('Annotations/*.xml'))
    text = ann.read_text()
    assert '<object>' in text
    ann.write_text(edit(text))
    with pytest.raises(AnnotationError, match=message) as err:
        DiverseWeatherDataset(data_root=str(tmp_path / 'dwd'), domain='fog', split='train', pipeline=[])
    assert ann.name in str(err.value)


def test_a_training_split_without_any_usable_box_is_named(tmp_path):
    import re
    from mmdg.datasets.layouts import AnnotationError
    write_synthetic_voc(str(tmp_path / 'dwd'), {'fog': 'fog'}, dict(train=2), size=(64, 128))
    for ann in (tmp_path / 'dwd' / 'fog').rglob('Annotations/*.xml'):  # every box of no area
        ann.write_text(re.sub(r'<xmax>[^<]*</xmax>', '<xmax>5</xmax>', re.sub(r'<xmin>[^<]*</xmin>', '<xmin>5</xmin>',
                                                                         ann.read_text())))
    with pytest.raises(AnnotationError, match='none of its 2 images has a box to train on'):
        DiverseWeatherDataset(data_root=str(tmp_path / 'dwd'), domain='fog', split='train', pipeline=[])
    ds = DiverseWeatherDataset(data_root=str(tmp_path / 'dwd'), domain='fog', split='train', pipeline=[],
                               test_mode=True)  # scoring such a split is allowed: nothing to learn, nothing wrong
    assert len(ds) == 2 and all(o['ignore_flag'] for o in ds.get_data_info(0)['instances'])
