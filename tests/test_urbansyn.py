"""UrbanSyn: the release's rgb/rgb_XXXX.png + ss/ss_XXXX.png (19 = unlabeled) through the converter CLI."""
import os
import os.path as osp

import numpy as np
from PIL import Image

from conftest import REPO, invoke_tool
from test_datasets_converters import _build, _md5, _read  # one home for these helpers
from mmdg.datasets.synthetic_layouts import train_ids_of, write_raw_layout

CONVERT = osp.join(REPO, 'tools', 'dataset_converters', 'convert_labels.py')
CHECK = osp.join(REPO, 'tools', 'dataset_converters', 'check_dataset.py')


def _run(*args):
    return invoke_tool(*args)


def test_convert_check_and_load(tmp_path):
    root = write_raw_layout('urbansyn', str(tmp_path / 'urbansyn'), n=3)
    assert sorted(os.listdir(osp.join(root, 'rgb'))) == ['rgb_0001.png', 'rgb_0002.png', 'rgb_0003.png']
    assert sorted(os.listdir(osp.join(root, 'ss'))) == ['ss_0001.png', 'ss_0002.png', 'ss_0003.png']
    # Every kind of value in one label: train ids, 19 (unlabeled) and 255.
    ss = osp.join(root, 'ss', 'ss_0002.png')
    arr = _read(ss).copy()
    arr[0, :19] = np.arange(19)
    arr[1, :4] = 19
    arr[2, :4] = 255
    Image.fromarray(arr).save(ss)
    sources = {osp.join(d, f): _md5(osp.join(d, f)) for d, _, fs in os.walk(root) for f in fs}

    out = _run(CONVERT, 'urbansyn', root, '--nproc', '2', '--no-progress')
    assert out.returncode == 0, out.stderr
    assert 'converting 3 labels' in out.stdout and 'wrote 3 files' in out.stdout
    labels = osp.join(root, 'labelTrainIds')
    assert sorted(os.listdir(labels)) == ['rgb_0001.png', 'rgb_0002.png', 'rgb_0003.png']
    got = _read(osp.join(labels, 'rgb_0002.png'))
    np.testing.assert_array_equal(got[0, :19], np.arange(19))
    assert (got[1, :4] == 255).all() and (got[2, :4] == 255).all()
    np.testing.assert_array_equal(got, np.where(arr == 19, 255, arr))
    for i in (0, 2):  # the untouched samples: their generated train ids, unlabeled pixels ignored
        expected = train_ids_of('urbansyn', 'train', i)
        np.testing.assert_array_equal(_read(osp.join(labels, f'rgb_{i + 1:04d}.png')), expected)
    assert {p: _md5(p) for p in sources} == sources

    # No silent overwrite on a second run.
    again = _run(CONVERT, 'urbansyn', root, '--no-progress')
    assert again.returncode != 0 and again.stderr.startswith('error: 3 output file(s) exist already')
    assert 'Traceback' not in again.stderr

    chk = _run(CHECK, 'urbansyn', root, '--nproc', '1', '--no-progress')
    assert chk.returncode == 0 and 'OK: 3 image/label pairs' in chk.stdout, chk.stderr

    ds = _build(dict(type='UrbanSynDataset', data_root=root))
    assert len(ds) == 3 and ds.metainfo['classes'][0] == 'road'
    sample = ds[1]
    assert sample['data_samples'].img_path.endswith(osp.join('rgb', 'rgb_0002.png'))
    np.testing.assert_array_equal(sample['data_samples'].gt_sem_seg.data.numpy()[0], got)


def test_value_above_unlabeled_is_an_error(tmp_path):
    root = write_raw_layout('urbansyn', str(tmp_path), n=3)
    ss = osp.join(root, 'ss', 'ss_0003.png')
    arr = _read(ss).copy()
    arr[5, 5] = 20
    Image.fromarray(arr).save(ss)
    out = _run(CONVERT, 'urbansyn', root, '--nproc', '2', '--no-progress')
    assert out.returncode != 0 and 'Traceback' not in out.stderr
    assert 'ss_0003.png' in out.stderr and '[20]' in out.stderr and '0..19 or 255' in out.stderr
    assert not osp.exists(osp.join(root, 'labelTrainIds')) or not os.listdir(osp.join(root, 'labelTrainIds'))
    ok = _run(CONVERT, 'urbansyn', root, '--ignore-unknown', '--no-progress')
    assert ok.returncode == 0, ok.stderr
    assert _read(osp.join(root, 'labelTrainIds', 'rgb_0003.png'))[5, 5] == 255


def test_missing_partner_is_named(tmp_path):
    root = write_raw_layout('urbansyn', str(tmp_path / 'a'), n=3)
    os.remove(osp.join(root, 'rgb', 'rgb_0002.png'))
    out = _run(CONVERT, 'urbansyn', root, '--no-progress')
    assert out.returncode != 0 and 'Traceback' not in out.stderr
    assert '1 image file(s) missing' in out.stderr and 'rgb_0002.png' in out.stderr and 'ss_0002.png' in out.stderr
    root = write_raw_layout('urbansyn', str(tmp_path / 'b'), n=3)
    os.remove(osp.join(root, 'ss', 'ss_0001.png'))
    out = _run(CONVERT, 'urbansyn', root, '--no-progress')
    assert out.returncode != 0 and '1 label file(s) missing' in out.stderr and 'ss_0001.png' in out.stderr
    out = _run(CONVERT, 'urbansyn', str(tmp_path / 'nowhere'), '--no-progress')
    assert out.returncode != 0 and 'urbansyn: folder' in out.stderr and 'rgb does not exist' in out.stderr
