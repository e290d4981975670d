"""Procedural samples written in the *raw public layouts* of GTA5, SYNTHIA, UrbanSyn, Cityscapes,
BDD100K, Mapillary v1.2 and ACDC, with each dataset's own label convention (GTA5 / Cityscapes label ids,
SYNTHIA class ids in the red channel of a 16-bit PNG, UrbanSyn train ids with 19 for unlabeled,
Mapillary v1.2 palette indices, train ids for BDD100K and ACDC). Tests run the converters and the
dataset classes on them, and anyone can try a config without the real data:
``write_raw_layout('gta5', 'data/fake/gta5', n=20)``, then the converter as for the real dataset.
"""
import os
import os.path as osp
from typing import Dict, Sequence, Tuple

import cv2
import numpy as np

from .label_maps import (GTA5_ID_TO_TRAIN_ID, IGNORE_INDEX, MAPILLARY_V12_CLASSES, MAPILLARY_V12_ID_TO_TRAIN_ID,
                         SYNTHIA_ID_TO_TRAIN_ID, URBANSYN_UNLABELED)
from .synthetic import DOMAINS, make_sample

#: The style each fake dataset is rendered in (GTA5 and SYNTHIA are the synthetic sources).
STYLE = dict(gta5='source', synthia='source', urbansyn='source', cityscapes='realistic', bdd100k='rain',
             mapillary='realistic', acdc=None)
ACDC_STYLE = dict(fog='fog', night='night', rain='rain', snow='fog')


def _inverse(id_to_train: Dict[int, int], void: int, size: int = 256) -> np.ndarray:
    """train id -> the first source id mapping to it; ignored pixels -> ``void``."""
    table = np.full(size, void, np.int64)
    for src, dst in sorted(id_to_train.items(), reverse=True):
        table[dst] = src
    return table


def _write(path: str, arr: np.ndarray) -> None:
    os.makedirs(osp.dirname(path), exist_ok=True)
    if not cv2.imwrite(path, arr):
        raise OSError(f'could not write {path}')


def _sample(style: str, split: str, index: int, size):
    img, train_ids, _ = make_sample(style, 'val' if split not in ('train',) else 'train', index, size)
    return img[..., ::-1], train_ids  # BGR for cv2


def write_raw_layout(dataset: str, root: str, n: int = 4, split: str = 'train',
                     size: Tuple[int, int] = (64, 128), conditions: Sequence[str] = ('night', 'fog')) -> str:
    """Writes ``n`` samples of ``dataset`` under ``root`` in its raw public layout; returns ``root``."""
    if dataset == 'acdc':
        for c in conditions:
            for i in range(n):
                img, lab = _sample(ACDC_STYLE[c], split, i, size)
                seq, name = f'GOPR{i // 2:04d}', f'GOPR{i // 2:04d}_frame_{i:06d}'
                _write(osp.join(root, 'rgb_anon', c, split, seq, f'{name}_rgb_anon.png'), img)
                _write(osp.join(root, 'gt', c, split, seq, f'{name}_gt_labelTrainIds.png'), lab)
        return root
    assert STYLE[dataset] in DOMAINS, dataset
    for i in range(n):
        img, lab = _sample(STYLE[dataset], split, i, size)
        if dataset == 'gta5':
            _write(osp.join(root, 'images', f'{i + 1:05d}.png'), img)
            _write(osp.join(root, 'labels', f'{i + 1:05d}.png'), _inverse(GTA5_ID_TO_TRAIN_ID, 0)[lab].astype(np.uint8))
        elif dataset == 'synthia':
            ids = _inverse(SYNTHIA_ID_TO_TRAIN_ID, 0)[lab].astype(np.uint16)
            label = np.stack([np.zeros_like(ids), np.full_like(ids, i), ids], -1)  # BGR: class in red
            _write(osp.join(root, 'RGB', f'{i:07d}.png'), img)
            _write(osp.join(root, 'GT', 'LABELS', f'{i:07d}.png'), label)
        elif dataset == 'urbansyn':
            _write(osp.join(root, 'rgb', f'rgb_{i + 1:04d}.png'), img)
            ss = np.where(lab == IGNORE_INDEX, URBANSYN_UNLABELED, lab).astype(np.uint8)
            _write(osp.join(root, 'ss', f'ss_{i + 1:04d}.png'), ss)
        elif dataset == 'cityscapes':
            city, name = 'fakecity', f'fakecity_{i // 10:06d}_{i:06d}'
            _write(osp.join(root, 'leftImg8bit', split, city, f'{name}_leftImg8bit.png'), img)
            _write(osp.join(root, 'gtFine', split, city, f'{name}_gtFine_labelIds.png'),
                   _inverse(GTA5_ID_TO_TRAIN_ID, 0)[lab].astype(np.uint8))
        elif dataset == 'bdd100k':
            name = f'{i:08x}-{i * 7919 % 16 ** 8:08x}'
            _write(osp.join(root, 'images', '10k', split, f'{name}.jpg'), img)
            _write(osp.join(root, 'labels', 'sem_seg', 'masks', split, f'{name}.png'), lab)
        elif dataset == 'mapillary':
            mapillary_split = 'training' if split == 'train' else 'validation'
            ids = _inverse(MAPILLARY_V12_ID_TO_TRAIN_ID, MAPILLARY_V12_CLASSES.index('Unlabeled'))[lab]
            _write(osp.join(root, mapillary_split, 'images', f'fake{i:06d}.jpg'), img)
            _write(osp.join(root, mapillary_split, 'v1.2', 'labels', f'fake{i:06d}.png'), ids.astype(np.uint8))
        else:
            raise KeyError(dataset)
    return root


def train_ids_of(dataset: str, split: str, index: int, size: Tuple[int, int] = (64, 128),
                 condition: str = 'night') -> np.ndarray:
    """The train ids a converted fake sample must end up with (255 where the dataset cannot say)."""
    style = ACDC_STYLE[condition] if dataset == 'acdc' else STYLE[dataset]
    lab = _sample(style, split, index, size)[1].copy()
    mapping = dict(gta5=GTA5_ID_TO_TRAIN_ID, cityscapes=GTA5_ID_TO_TRAIN_ID, synthia=SYNTHIA_ID_TO_TRAIN_ID,
                   mapillary=MAPILLARY_V12_ID_TO_TRAIN_ID).get(dataset)
    if mapping is not None:
        lab[~np.isin(lab, list(set(mapping.values())))] = IGNORE_INDEX
    return lab
