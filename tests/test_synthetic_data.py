"""The procedural demo data: deterministic, valid labels, Cityscapes layout."""
import json
import os

import cv2
import numpy as np

from mmdg.datasets.synthetic import CLASSES, DOMAINS, make_sample, write_cityscapes_layout


def test_samples_are_deterministic_and_domains_differ_in_appearance():
    a = make_sample('night', 'train', 3)
    b = make_sample('night', 'train', 3)
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1]) and a[2] == b[2]
    src, night = make_sample('source', 'val', 0)[0], make_sample('night', 'val', 0)[0]
    assert night.mean() < 0.6 * src.mean()


def test_labels_and_boxes_are_valid():
    seen = set()
    for d in DOMAINS:
        for i in range(5):
            img, lab, boxes = make_sample(d, 'train', i)
            assert img.shape == (128, 256, 3) and img.dtype == np.uint8 and lab.shape == (128, 256)
            assert lab.max() < len(CLASSES)
            seen |= set(np.unique(lab).tolist())
            for b in boxes:
                x1, y1, x2, y2 = b['bbox']
                assert 0 <= x1 < x2 <= 256 and 0 <= y1 < y2 <= 128 and b['label'] in CLASSES
    for name in ('road', 'sidewalk', 'building', 'sky', 'car', 'person', 'pole', 'vegetation'):
        assert CLASSES.index(name) in seen, name


def test_cityscapes_layout_is_written_once(tmp_path):
    meta = write_cityscapes_layout(str(tmp_path), domains=('source', 'fog'), splits=dict(train=3, val=2),
                                   workers=1, progress=False)
    img = tmp_path / 'fog/leftImg8bit/val/fog/fog_000001_000019_leftImg8bit.png'
    gt = tmp_path / 'fog/gtFine/val/fog/fog_000001_000019_gtFine_labelTrainIds.png'
    assert img.exists() and gt.exists() and meta['splits'] == dict(train=3, val=2)
    lab = cv2.imread(str(gt), cv2.IMREAD_UNCHANGED)
    assert np.array_equal(lab, make_sample('fog', 'val', 1)[1])
    boxes = json.loads((tmp_path / 'fog/boxes/val/fog/fog_000001_000019.json').read_text())
    assert boxes['objects'] == make_sample('fog', 'val', 1)[2]
    mtime = os.path.getmtime(img)
    write_cityscapes_layout(str(tmp_path), domains=('source', 'fog'), splits=dict(train=3, val=2), workers=1,
                            progress=False)
    assert os.path.getmtime(img) == mtime


def test_one_class_list():
    from mmdg.datasets import label_maps, synthetic
    assert synthetic.CLASSES is label_maps.CITYSCAPES_CLASSES and synthetic.ID is label_maps.TRAIN_ID
