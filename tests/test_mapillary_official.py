"""Mapillary v1.2 -> 19 Cityscapes classes by the official rule, and the half-resolution validation set."""
import hashlib
import io
import os
import os.path as osp
import shutil

import numpy as np
import pytest
from PIL import Image

from conftest import REPO, invoke_tool
from mmdg.datasets.converters import DatasetLayoutError
from mmdg.datasets.label_maps import (MAPILLARY_V12_CLASSES, MAPILLARY_V12_ID_TO_TRAIN_ID, TRAIN_ID,
                                      mapillary_name_to_cityscapes)
from mmdg.datasets.synthetic_layouts import train_ids_of, write_raw_layout

CONVERT = osp.join(REPO, 'tools', 'dataset_converters', 'convert_labels.py')
CHECK = osp.join(REPO, 'tools', 'dataset_converters', 'check_dataset.py')

# Written out class by class from the rule (readable name lower cased, spaces and hyphens removed; an
# exact Cityscapes name, else trafficsign/front/back, onrail, cyclist/rider, pole/streetlight,
# curb/pedestrianarea, crosswalkplain/parking/bikelane/servicelane/lanemarking; else ignored).
EXPECTED = [
    ('Bird', None), ('Ground Animal', None), ('Curb', 'sidewalk'), ('Fence', 'fence'), ('Guard Rail', None),
    ('Barrier', None), ('Wall', 'wall'), ('Bike Lane', 'road'), ('Crosswalk - Plain', 'road'),
    ('Curb Cut', 'sidewalk'), ('Parking', 'road'), ('Pedestrian Area', 'sidewalk'), ('Rail Track', None),
    ('Road', 'road'), ('Service Lane', 'road'), ('Sidewalk', 'sidewalk'), ('Bridge', None),
    ('Building', 'building'), ('Tunnel', None), ('Person', 'person'), ('Bicyclist', 'rider'),
    ('Motorcyclist', 'rider'), ('Other Rider', 'rider'), ('Lane Marking - Crosswalk', 'road'),
    ('Lane Marking - General', 'road'), ('Mountain', None), ('Sand', None), ('Sky', 'sky'), ('Snow', None),
    ('Terrain', 'terrain'), ('Vegetation', 'vegetation'), ('Water', None), ('Banner', None), ('Bench', None),
    ('Bike Rack', None), ('Billboard', None), ('Catch Basin', None), ('CCTV Camera', None),
    ('Fire Hydrant', None), ('Junction Box', None), ('Mailbox', None), ('Manhole', None),
    ('Phone Booth', None), ('Pothole', None), ('Street Light', 'pole'), ('Pole', 'pole'),
    ('Traffic Sign Frame', 'traffic sign'), ('Utility Pole', 'pole'), ('Traffic Light', 'traffic light'),
    ('Traffic Sign (Back)', 'traffic sign'), ('Traffic Sign (Front)', 'traffic sign'), ('Trash Can', None),
    ('Bicycle', 'bicycle'), ('Boat', None), ('Bus', 'bus'), ('Car', 'car'), ('Caravan', None),
    ('Motorcycle', 'motorcycle'), ('On Rails', 'train'), ('Other Vehicle', None), ('Trailer', None),
    ('Truck', 'truck'), ('Wheeled Slow', None), ('Car Mount', None), ('Ego Vehicle', None), ('Unlabeled', None),
]


def _expected_lut():
    lut = np.full(256, 255, np.uint8)
    for i, (_, city) in enumerate(EXPECTED):
        if city is not None:
            lut[i] = TRAIN_ID[city]
    return lut


def _md5(path):
    return hashlib.md5(open(path, 'rb').read()).hexdigest()


def _run(*args):
    return invoke_tool(*args)


def test_every_v12_class_follows_the_official_rule():
    assert [name for name, _ in EXPECTED] == list(MAPILLARY_V12_CLASSES)
    for i, (name, city) in enumerate(EXPECTED):
        assert mapillary_name_to_cityscapes(name) == city, name
        assert MAPILLARY_V12_ID_TO_TRAIN_ID.get(i) == (None if city is None else TRAIN_ID[city]), name
    assert len(MAPILLARY_V12_ID_TO_TRAIN_ID) == 34


def test_rule_order_and_normalisation():
    # The earlier rule wins; hyphens and spaces vanish before matching; exact names come first.
    assert mapillary_name_to_cityscapes('Traffic-Sign Pole') == 'traffic sign'
    assert mapillary_name_to_cityscapes('Rider on Rails') == 'train'
    assert mapillary_name_to_cityscapes('Pole Rider') == 'rider'
    assert mapillary_name_to_cityscapes('Curb Parking') == 'sidewalk'
    assert mapillary_name_to_cityscapes('TRAFFIC  LIGHT') == 'traffic light'
    assert mapillary_name_to_cityscapes('Traffic Light Pole') == 'pole'  # not an exact name: substring rules
    assert mapillary_name_to_cityscapes('Bike-Lane') == 'road'
    assert mapillary_name_to_cityscapes('Manhole') is None


def test_real_fixture_through_the_cli(fixtures_dir, tmp_path):
    root = osp.join(fixtures_dir, 'mapillary')
    if not osp.isdir(root):
        pytest.skip('no Mapillary fixture')
    before = {osp.join(d, f): _md5(osp.join(d, f)) for d, _, fs in os.walk(root) for f in fs}
    out = _run(CONVERT, 'mapillary', root, '--out-dir', str(tmp_path), '--nproc', '1', '--no-progress')
    assert out.returncode == 0, out.stderr
    label = osp.join(root, 'v1.2', '__CRyFzoDOXn6unQ6a3DnQ.png')
    src = np.asarray(Image.open(label))
    got = np.asarray(Image.open(tmp_path / 'labelTrainIds' / '__CRyFzoDOXn6unQ6a3DnQ.png'))
    np.testing.assert_array_equal(got, _expected_lut()[src])
    # Building, Street Light, Pole: Street Light is a pole now, so only building and pole remain.
    assert set(np.unique(got)) == {TRAIN_ID['building'], TRAIN_ID['pole']}
    assert {p: _md5(p) for p in before} == before


def test_real_fixture_half_resolution(fixtures_dir, tmp_path):
    src_root = osp.join(fixtures_dir, 'mapillary')
    if not osp.isdir(src_root):
        pytest.skip('no Mapillary fixture')
    root = tmp_path / 'mapillary'
    shutil.copytree(osp.join(src_root, 'images'), root / 'validation' / 'images')
    shutil.copytree(osp.join(src_root, 'v1.2'), root / 'validation' / 'v1.2' / 'labels')
    out = _run(CONVERT, 'mapillary', str(root), '--half-val', '--nproc', '1', '--no-progress')
    assert out.returncode == 0, out.stderr
    name = '__CRyFzoDOXn6unQ6a3DnQ'
    image = Image.open(root / 'validation' / 'images' / f'{name}.jpg')
    w, h = image.size
    # The official recipe: (w // 2, h // 2), PIL bicubic for the image saved with PIL's JPEG defaults,
    # PIL nearest for the label.
    buf = io.BytesIO()
    image.resize((w // 2, h // 2), Image.BICUBIC).save(buf, format='JPEG')
    ref_img = np.asarray(Image.open(buf))
    half_img = np.asarray(Image.open(root / 'half' / 'validation' / 'images' / f'{name}.jpg'))
    assert half_img.shape == (h // 2, w // 2, 3)
    np.testing.assert_array_equal(half_img, ref_img)
    src = np.asarray(Image.open(root / 'validation' / 'v1.2' / 'labels' / f'{name}.png'))
    ref_lab = np.asarray(Image.fromarray(_expected_lut()[src]).resize((w // 2, h // 2), Image.NEAREST))
    half_lab = np.asarray(Image.open(root / 'half' / 'validation' / 'labelTrainIds' / f'{name}.png'))
    np.testing.assert_array_equal(half_lab, ref_lab)


# ------------------------------------------------------------------------------ half resolution, generated
def _build(cfg):
    from mmengine.registry import init_default_scope
    init_default_scope('mmdg')
    from mmdg.registry import DATASETS
    pipeline = [dict(type='LoadImageChecked'), dict(type='LoadAnnotationsChecked'), dict(type='PackSegInputs')]
    return DATASETS.build(dict(cfg, pipeline=pipeline))


def test_half_val_cli_on_generated_layout(tmp_path):
    size = (65, 127)  # odd: the half size rounds down
    root = write_raw_layout('mapillary', str(tmp_path / 'mapillary'), n=3, split='val', size=size)
    sources = {osp.join(d, f): _md5(osp.join(d, f)) for d, _, fs in os.walk(root) for f in fs}
    out = _run(CONVERT, 'mapillary', root, '--half-val', '--nproc', '2', '--no-progress')
    assert out.returncode == 0, out.stderr
    assert 'converting 3 labels' in out.stdout and 'half-resolution validation set' in out.stdout
    half_img = osp.join(root, 'half', 'validation', 'images')
    half_lab = osp.join(root, 'half', 'validation', 'labelTrainIds')
    assert sorted(os.listdir(half_img)) == [f'fake{i:06d}.jpg' for i in range(3)]
    assert sorted(os.listdir(half_lab)) == [f'fake{i:06d}.png' for i in range(3)]
    for i in range(3):
        full = np.asarray(Image.open(osp.join(root, 'validation', 'labelTrainIds', f'fake{i:06d}.png')))
        np.testing.assert_array_equal(full, train_ids_of('mapillary', 'val', i, size))
        ref = np.asarray(Image.fromarray(full).resize((size[1] // 2, size[0] // 2), Image.NEAREST))
        np.testing.assert_array_equal(np.asarray(Image.open(osp.join(half_lab, f'fake{i:06d}.png'))), ref)
        assert Image.open(osp.join(half_img, f'fake{i:06d}.jpg')).size == (size[1] // 2, size[0] // 2)
    assert {p: _md5(p) for p in sources} == sources

    # Again: the train-id labels are kept, the half set is not replaced without --overwrite.
    again = _run(CONVERT, 'mapillary', root, '--half-val', '--nproc', '1', '--no-progress')
    assert again.returncode != 0 and 'train-id labels exist already: kept' in again.stdout
    assert again.stderr.startswith('error: 6 output file(s) exist already') and 'Traceback' not in again.stderr
    assert _run(CONVERT, 'mapillary', root, '--half-val', '--overwrite', '--no-progress').returncode == 0
    assert not [f for f in os.listdir(half_lab) if f.startswith('.mmdg-tmp')]

    chk = _run(CHECK, 'mapillary_half', root, '--nproc', '1', '--no-progress')
    assert chk.returncode == 0 and 'OK: 3 image/label pairs' in chk.stdout, chk.stderr

    ds = _build(dict(type='MapillaryCS19Dataset', data_root=root, half_resolution=True))
    assert len(ds) == 3 and ds.get_data_info(0)['img_path'].startswith(half_img)
    gt = ds[1]['data_samples'].gt_sem_seg.data.numpy()[0]
    np.testing.assert_array_equal(gt, np.asarray(Image.open(osp.join(half_lab, 'fake000001.png'))))
    full = _build(dict(type='MapillaryCS19Dataset', data_root=root))
    assert full[1]['data_samples'].gt_sem_seg.data.shape[-2:] == size


def test_half_val_bad_input(tmp_path):
    root = write_raw_layout('mapillary', str(tmp_path / 'm'), n=2, split='val')
    with pytest.raises(DatasetLayoutError, match=r'half-resolution validation folder .*half/validation/images does not '
                                        r'exist; make it with: .*convert_labels\.py mapillary .* --half-val'):
        _build(dict(type='MapillaryCS19Dataset', data_root=root, half_resolution=True))
    with pytest.raises(ValueError, match='validation split only'):
        _build(dict(type='MapillaryCS19Dataset', data_root=root, split='training', half_resolution=True))
    # A bad value stops the run before anything is written.
    label = osp.join(root, 'validation', 'v1.2', 'labels', 'fake000001.png')
    arr = np.asarray(Image.open(label)).copy()
    arr[0, 0] = 70  # v1.2 values end at 65
    Image.fromarray(arr).save(label)
    out = _run(CONVERT, 'mapillary', root, '--half-val', '--nproc', '1', '--no-progress')
    assert out.returncode != 0 and 'fake000001.png' in out.stderr and '[70]' in out.stderr
    assert not osp.exists(osp.join(root, 'half'))
    # Only a training split: nothing to halve.
    only_train = write_raw_layout('mapillary', str(tmp_path / 't'), n=1, split='train')
    out = _run(CONVERT, 'mapillary', only_train, '--half-val', '--nproc', '1', '--no-progress')
    assert out.returncode != 0 and 'validation does not exist' in out.stderr
    out = _run(CONVERT, 'gta5', only_train, '--half-val')
    assert out.returncode != 0 and '--half-val is for mapillary only' in out.stderr
