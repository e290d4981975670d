"""DG segmentation datasets and label converters: real-format fixtures and generated raw layouts."""
import hashlib
import os
import os.path as osp
import shutil

import numpy as np
import pytest
from PIL import Image

from conftest import REPO, invoke_tool
from mmdg.datasets.converters import (DatasetLayoutError, LabelValueError, check, check_files, conversion_pairs,
                                      convert)
from mmdg.datasets.label_maps import MAPILLARY_V12_CLASSES, SYNTHIA_ID_TO_TRAIN_ID, TRAIN_ID
from mmdg.datasets.synthetic_layouts import train_ids_of, write_raw_layout

SPLIT = dict(gta5='train', synthia='train', urbansyn='train', cityscapes='val', mapillary='val', bdd100k='val',
             acdc='val')


def _md5(path):
    return hashlib.md5(open(path, 'rb').read()).hexdigest()


def _read(path):
    return np.asarray(Image.open(path))


def _build(cfg):
    from mmengine.registry import init_default_scope
    init_default_scope('mmdg')
    from mmdg.registry import DATASETS
    pipeline = [dict(type='LoadImageChecked'), dict(type='LoadAnnotationsChecked'), dict(type='PackSegInputs')]
    return DATASETS.build(dict(cfg, pipeline=pipeline))


# ---------------------------------------------------------------------------------------- real fixtures
def test_cityscapes_label_ids_convert_to_the_released_train_ids(fixtures_dir, tmp_path):
    root = osp.join(fixtures_dir, 'cityscapes')
    before = {f: _md5(f) for f in sorted(os.popen(f'find {root} -type f').read().split())}
    images, pairs = conversion_pairs('cityscapes', root, out_dir=str(tmp_path))
    assert len(pairs) == 1 and pairs[0][1].startswith(str(tmp_path))
    convert(pairs, 'cityscapes', images, nproc=1, progress=False)
    ours = _read(pairs[0][1])
    released = _read(pairs[0][0].replace('_labelIds', '_labelTrainIds'))
    # The released train ids were rendered from polygons: they differ from a pixel-wise map of the
    # label ids only on object borders (77 of 32768 pixels here).
    assert ours.shape == released.shape and (ours == released).mean() > 0.995
    assert set(np.unique(ours)) <= set(range(19)) | {255}
    assert {f: _md5(f) for f in before} == before  # the fixtures are untouched


def test_mapillary_v12_maps_by_name(fixtures_dir, tmp_path):
    root = osp.join(fixtures_dir, 'mapillary')
    images, pairs = conversion_pairs('mapillary', root, out_dir=str(tmp_path))
    assert len(pairs) == 1
    report = convert(pairs, 'mapillary', images, nproc=1, progress=False)
    src, out = _read(pairs[0][0]), _read(pairs[0][1])
    names = {MAPILLARY_V12_CLASSES[v] for v in np.unique(src)}
    assert names == {'Building', 'Street Light', 'Pole'}
    assert (out[src == MAPILLARY_V12_CLASSES.index('Building')] == TRAIN_ID['building']).all()
    assert (out[src == MAPILLARY_V12_CLASSES.index('Pole')] == TRAIN_ID['pole']).all()
    assert (out[src == MAPILLARY_V12_CLASSES.index('Street Light')] == TRAIN_ID['pole']).all()  # 'streetlight' rule
    assert report.pixels[TRAIN_ID['building']] == (src == 17).sum()


def test_bdd100k_fixture_checks_and_loads(fixtures_dir):
    root = osp.join(fixtures_dir, 'bdd100k')
    images, labels = check_files('bdd100k', root, 'val')
    report = check(labels, images=images, nproc=1, progress=False)
    assert report.files == 3 and report.pixels[TRAIN_ID['building']] > 0
    ds = _build(dict(type='BDD100KDGDataset', data_root=root, split='train'))
    assert len(ds) == 3 and ds[0]['data_samples'].gt_sem_seg.data.shape[-2:] == (8, 8)


# ------------------------------------------------------------------------------------ generated layouts
@pytest.mark.parametrize('dataset', ['gta5', 'synthia', 'urbansyn', 'cityscapes', 'mapillary'])
def test_converters_on_generated_raw_layouts(dataset, tmp_path):
    root = write_raw_layout(dataset, str(tmp_path / dataset), n=3, split=SPLIT[dataset])
    images, pairs = conversion_pairs(dataset, root)
    sources = {s: _md5(s) for s, _ in pairs}
    report = convert(pairs, dataset, images, nproc=2, progress=False)
    assert report.files == 3 and {s: _md5(s) for s in sources} == sources
    for i, (_, out) in enumerate(pairs):
        np.testing.assert_array_equal(_read(out), train_ids_of(dataset, SPLIT[dataset], i))
    # A second run never replaces existing outputs silently.
    with pytest.raises(FileExistsError, match='exist already'):
        convert(pairs, dataset, images, nproc=1, progress=False)
    convert(pairs, dataset, images, nproc=1, progress=False, overwrite=True)
    # The outputs of the first run are not taken for sources.
    assert len(conversion_pairs(dataset, root)[1]) == 3


def test_synthia_reads_the_red_channel_of_16bit_labels(tmp_path):
    root = write_raw_layout('synthia', str(tmp_path), n=1)
    raw = np.asarray(Image.open(osp.join(root, 'GT', 'LABELS', '0000000.png')).convert('I'))  # PIL cannot do 16-bit RGB
    import cv2
    bgr = cv2.imread(osp.join(root, 'GT', 'LABELS', '0000000.png'), cv2.IMREAD_UNCHANGED)
    assert bgr.dtype == np.uint16 and bgr.ndim == 3 and raw is not None
    ids = bgr[..., 2]
    images, pairs = conversion_pairs('synthia', root)
    convert(pairs, 'synthia', images, nproc=1, progress=False)
    out = _read(pairs[0][1])
    for src, dst in SYNTHIA_ID_TO_TRAIN_ID.items():
        assert (out[ids == src] == dst).all()


@pytest.mark.parametrize('cfg', [
    dict(type='GTA5Dataset'), dict(type='SYNTHIADataset'), dict(type='UrbanSynDataset'),
    dict(type='CityscapesDGDataset'), dict(type='BDD100KDGDataset'), dict(type='MapillaryCS19Dataset'),
    dict(type='ACDCDataset', condition='fog')])
def test_dataset_classes_read_converted_layouts(cfg, tmp_path):
    name = dict(GTA5Dataset='gta5', SYNTHIADataset='synthia', UrbanSynDataset='urbansyn',
                CityscapesDGDataset='cityscapes', BDD100KDGDataset='bdd100k', MapillaryCS19Dataset='mapillary',
                ACDCDataset='acdc')[cfg['type']]
    root = write_raw_layout(name, str(tmp_path), n=2, split=SPLIT[name], conditions=('fog',))
    if name in ('gta5', 'synthia', 'urbansyn', 'cityscapes', 'mapillary'):
        images, pairs = conversion_pairs(name, root)
        convert(pairs, name, images, nproc=1, progress=False)
    ds = _build(dict(cfg, data_root=root))
    assert len(ds) == 2 and ds.metainfo['classes'][0] == 'road' and len(ds.metainfo['classes']) == 19
    gt = ds[1]['data_samples'].gt_sem_seg.data.numpy()[0]
    np.testing.assert_array_equal(gt, train_ids_of(name, SPLIT[name], 1, condition='fog'))


# --------------------------------------------------------------------------------------------- bad input
def test_unexpected_label_value_stops_before_any_output(tmp_path):
    root = write_raw_layout('gta5', str(tmp_path), n=4)
    bad = osp.join(root, 'labels', '00003.png')
    lab = _read(bad).copy()
    lab[0, 0] = 40  # GTA5 ids end at 33
    Image.fromarray(lab).save(bad)
    images, pairs = conversion_pairs('gta5', root)
    with pytest.raises(LabelValueError, match=r'00003\.png.*\[40\]'):
        convert(pairs, 'gta5', images, nproc=2, progress=False)
    assert not [f for f in os.listdir(osp.join(root, 'labels')) if 'TrainIds' in f or 'tmp' in f]
    report = convert(pairs, 'gta5', images, nproc=1, progress=False, ignore_unknown=True)
    assert report.unknown_values == {bad: [40]} and _read(pairs[2][1])[0, 0] == 255


def test_refuses_to_write_over_a_source(tmp_path):
    root = write_raw_layout('mapillary', str(tmp_path), n=1, split='val')
    label_dir = osp.join(root, 'validation', 'v1.2', 'labels')
    src = osp.join(label_dir, os.listdir(label_dir)[0])
    digest = _md5(src)
    with pytest.raises(FileExistsError, match='is one of the source files'):
        convert([(src, src)], 'mapillary', nproc=1, progress=False)
    assert _md5(src) == digest


def test_missing_folders_and_partners_are_named(tmp_path):
    with pytest.raises(DatasetLayoutError, match=r'gta5: folder .*nowhere/images does not exist'):
        conversion_pairs('gta5', str(tmp_path / 'nowhere'))
    root = write_raw_layout('gta5', str(tmp_path / 'g'), n=3)
    os.remove(osp.join(root, 'images', '00002.png'))
    with pytest.raises(DatasetLayoutError, match=r'1 image file\(s\) missing .*00002\.png'):
        conversion_pairs('gta5', root)
    root = write_raw_layout('bdd100k', str(tmp_path / 'b'), n=3, split='val')
    label_dir = osp.join(root, 'labels', 'sem_seg', 'masks', 'val')
    os.remove(osp.join(label_dir, sorted(os.listdir(label_dir))[0]))
    with pytest.raises(DatasetLayoutError, match=r'1 label file\(s\) missing'):
        check_files('bdd100k', root, 'val')
    with pytest.raises(DatasetLayoutError, match=r'1 of 3 label files are missing'):
        _build(dict(type='BDD100KDGDataset', data_root=root))


def test_label_and_image_sizes_must_match(tmp_path):
    root = write_raw_layout('gta5', str(tmp_path), n=2)
    img = osp.join(root, 'images', '00002.png')
    Image.open(img).resize((130, 66)).save(img)
    images, pairs = conversion_pairs('gta5', root)
    with pytest.raises(LabelValueError, match=r'differ in size.*label \(64, 128\), image \(66, 130\)'):
        convert(pairs, 'gta5', images, nproc=1, progress=False)
    report = convert(pairs, 'gta5', images, nproc=1, progress=False, resize_to_images=True)
    assert len(report.size_mismatches) == 1 and _read(pairs[1][1]).shape == (66, 130)


def test_checked_loaders_name_the_file(tmp_path):
    root = write_raw_layout('bdd100k', str(tmp_path), n=2, split='val')
    img = osp.join(root, 'images', '10k', 'val', sorted(os.listdir(osp.join(root, 'images', '10k', 'val')))[0])
    open(img, 'wb').write(b'\xff\xd8\xff not really a jpeg')
    ds = _build(dict(type='BDD100KDGDataset', data_root=root))
    from mmdg.datasets import ImageDecodeError
    with pytest.raises(ImageDecodeError, match=osp.basename(img)):
        ds[0]
    lab = osp.join(root, 'labels', 'sem_seg', 'masks', 'val', sorted(os.listdir(osp.dirname(img).replace(
        'images/10k', 'labels/sem_seg/masks')))[1])
    arr = _read(lab).copy()
    arr[:2, :2] = 19
    Image.fromarray(arr).save(lab)
    with pytest.raises(LabelValueError, match=r'\[19\] outside the 19 classes'):
        ds[1]


def test_converter_cli(tmp_path):
    root = write_raw_layout('gta5', str(tmp_path / 'gta5'), n=3)
    tool = osp.join(REPO, 'tools', 'dataset_converters', 'convert_labels.py')
    out = invoke_tool(tool, 'gta5', root, '--nproc', '2')
    assert out.returncode == 0, out.stderr
    assert 'converting 3 labels with 2 processes' in out.stdout and 'wrote 3 files' in out.stdout
    out = invoke_tool(tool, 'gta5', root)
    assert out.returncode != 0 and out.stderr.startswith('error: 3 output file(s) exist already')
    assert 'Traceback' not in out.stderr
    shutil.rmtree(osp.join(root, 'labels'))
    check = osp.join(REPO, 'tools', 'dataset_converters', 'check_dataset.py')
    out = invoke_tool(check, 'gta5', root)
    assert out.returncode != 0 and 'gta5: folder' in out.stderr and 'labels does not exist' in out.stderr


def test_an_exif_turned_image_is_refused_by_the_checker_and_the_loader_alike(tmp_path):
    """A JPEG whose EXIF orientation says "rotated 90 degrees": OpenCV (the loader) turns it, the label PNG
    stays on the stored grid, and check_dataset (reading the header size) passed it. Square, the pair trained
    silently wrong; now both refuse it, naming the file and the tag."""
    from PIL import Image

    from mmdg.datasets.converters import check
    from mmdg.datasets.layouts import ImageOrientationError
    from mmdg.datasets.transforms import LoadImageChecked
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(np.zeros((64, 64, 3), np.uint8)).save(tmp_path / 'a.jpg', exif=exif.tobytes())
    Image.fromarray(np.zeros((64, 64), np.uint8)).save(tmp_path / 'a.png')
    with pytest.raises(ImageOrientationError, match=r'a\.jpg: its EXIF orientation tag \(6: rotated 90 degrees\)'):
        check([str(tmp_path / 'a.png')], 'train_ids', images=[str(tmp_path / 'a.jpg')], nproc=1, progress=False)
    with pytest.raises(ImageOrientationError, match='EXIF orientation'):
        LoadImageChecked()(dict(img_path=str(tmp_path / 'a.jpg')))
    Image.fromarray(np.zeros((64, 64, 3), np.uint8)).save(tmp_path / 'b.jpg')  # no tag: fine for both
    Image.fromarray(np.zeros((64, 64), np.uint8)).save(tmp_path / 'b.png')
    check([str(tmp_path / 'b.png')], 'train_ids', images=[str(tmp_path / 'b.jpg')], nproc=1, progress=False)
    assert LoadImageChecked()(dict(img_path=str(tmp_path / 'b.jpg')))['img'].shape == (64, 64, 3)


@pytest.mark.parametrize('form', ['palette', 'gray16', 'gray16_out_of_range', 'gray_alpha', 'rgb'])
def test_checker_and_loader_read_every_stored_label_form_alike(tmp_path, form):
    """A label file's stored form (palette, 16 bits, an alpha channel, colour) is read the same way by
    check_dataset (mmdg.datasets.converters.check) and by the training loader (LoadAnnotationsChecked): both
    accept it with the same values, or both refuse it."""
    from PIL import Image

    from mmdg.datasets.converters import check, read_label
    from mmdg.datasets.layouts import LabelValueError
    from mmdg.datasets.transforms import LoadAnnotationsChecked
    values = np.arange(64 * 64).reshape(64, 64) % 19
    path = str(tmp_path / 'label.png')
    if form == 'palette':
        im = Image.fromarray(values.astype(np.uint8), mode='P')
        im.putpalette([(i * 37) % 256 for i in range(768)])  # what a viewer shows: colours, not ids
    elif form.startswith('gray16'):
        im = Image.fromarray((values + (300 if form.endswith('range') else 0)).astype(np.uint16))
    elif form == 'gray_alpha':
        im = Image.fromarray(values.astype(np.uint8)).convert('LA')
    else:
        im = Image.fromarray(np.repeat(values[..., None], 3, axis=2).astype(np.uint8))
    im.save(path)
    loader = LoadAnnotationsChecked(reduce_zero_label=False)
    outcomes = []
    for read in (lambda: check([path], 'train_ids', nproc=1, progress=False) and read_label(path),
                 lambda: loader(dict(seg_map_path=path, seg_fields=[], reduce_zero_label=False))['gt_seg_map']):
        try:
            outcomes.append(np.asarray(read()).astype(np.int64))
        except (LabelValueError, ValueError) as err:
            outcomes.append(type(err).__name__)
    accepted = [isinstance(o, np.ndarray) for o in outcomes]
    assert accepted[0] == accepted[1], (form, outcomes)
    if all(accepted):
        assert np.array_equal(outcomes[0], outcomes[1]) and np.array_equal(outcomes[0], values), form
    assert all(accepted) == (form in ('palette', 'gray16')), (form, outcomes)
