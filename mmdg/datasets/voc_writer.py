"""Write detection data in the VOC-per-domain layout of :mod:`mmdg.datasets.dwd`: from the procedural
generator (the demo, the tests) and from Cityscapes instance ids (``tools/dataset_converters/cityscapes_to_dwd.py``).

Boxes are handled as pixel boxes ``(x1, y1, x2, y2)`` with exclusive ends (``x2 = last column + 1``) and
written in VOC's 1-based inclusive convention, which mmdet's reader turns back into the 0-based inclusive
box ``(x1, y1, x2 - 1, y2 - 1)``.
"""
from __future__ import annotations

import glob
import os
import os.path as osp
import xml.etree.ElementTree as ET
from typing import Dict, List, Sequence, Tuple

import cv2
import numpy as np

from .layouts import DatasetLayoutError
from .dwd import CITYSCAPES_DET_CLASSES, DWD_CLASSES

from mmdg.utils.atomic import atomic_open

#: Cityscapes label ids of the instance classes kept for detection (``instanceIds = labelId * 1000 + k``).
CITYSCAPES_INSTANCE_LABELS = {24: 'person', 25: 'rider', 26: 'car', 27: 'truck', 28: 'bus', 31: 'train',
                              32: 'motorcycle', 33: 'bicycle'}
#: Class names written for each label set, from Cityscapes' names (also the generator's). DWD has no train.
LABEL_SETS: Dict[str, Dict[str, str]] = dict(
    dwd=dict(person='person', rider='rider', car='car', truck='truck', bus='bus', motorcycle='motor', bicycle='bike'),
    cityscapes8={c: c for c in CITYSCAPES_DET_CLASSES},
)
CLASSES_OF = dict(dwd=DWD_CLASSES, cityscapes8=CITYSCAPES_DET_CLASSES)


def voc_xml(filename: str, width: int, height: int, objects: Sequence[dict]) -> ET.ElementTree:
    """A VOC annotation; ``objects``: ``dict(name=..., bbox=(x1, y1, x2, y2) exclusive, difficult=0)``."""
    root = ET.Element('annotation')
    ET.SubElement(root, 'filename').text = filename
    size = ET.SubElement(root, 'size')
    for k, v in (('width', width), ('height', height), ('depth', 3)):
        ET.SubElement(size, k).text = str(v)
    for o in objects:
        x1, y1, x2, y2 = (int(v) for v in o['bbox'])
        if not (0 <= x1 < x2 <= width and 0 <= y1 < y2 <= height):
            raise ValueError(f'{filename}: box {o["bbox"]} of {o["name"]} is empty or outside the {width}x{height} image')
        obj = ET.SubElement(root, 'object')
        ET.SubElement(obj, 'name').text = o['name']
        ET.SubElement(obj, 'difficult').text = str(int(o.get('difficult', 0)))
        box = ET.SubElement(obj, 'bndbox')
        for k, v in (('xmin', x1 + 1), ('ymin', y1 + 1), ('xmax', x2), ('ymax', y2)):
            ET.SubElement(box, k).text = str(v)
    ET.indent(root)
    return ET.ElementTree(root)


def write_voc_sample(voc_dir: str, img_id: str, image_bgr: np.ndarray, objects: Sequence[dict]) -> None:
    """``voc_dir/JPEGImages/<img_id>.jpg`` and ``voc_dir/Annotations/<img_id>.xml``."""
    for sub in ('JPEGImages', 'Annotations'):
        os.makedirs(osp.join(voc_dir, sub), exist_ok=True)
    h, w = image_bgr.shape[:2]
    tree = voc_xml(f'{img_id}.jpg', w, h, objects)  # checks the boxes before anything is written
    if not cv2.imwrite(osp.join(voc_dir, 'JPEGImages', f'{img_id}.jpg'), image_bgr, [cv2.IMWRITE_JPEG_QUALITY, 95]):
        raise OSError(f'cannot write {osp.join(voc_dir, "JPEGImages", img_id + ".jpg")}')
    tree.write(osp.join(voc_dir, 'Annotations', f'{img_id}.xml'), encoding='utf-8')


def write_split(voc_dir: str, split: str, ids: Sequence[str]) -> str:
    path = osp.join(voc_dir, 'ImageSets', 'Main', f'{split}.txt')
    os.makedirs(osp.dirname(path), exist_ok=True)
    with atomic_open(path, 'w') as f:
        f.write(''.join(f'{i}\n' for i in ids))
    return path


def instance_boxes(instance_ids: np.ndarray, label_set: str = 'dwd', min_pixels: int = 1) -> List[dict]:
    """Boxes of the Cityscapes ``instanceIds`` map: one per value ``labelId * 1000 + k`` whose label is
    a detection class of ``label_set`` (crowd regions carry the bare label id and have no box)."""
    names = LABEL_SETS[label_set]
    out = []
    for value in np.unique(instance_ids):
        cls = CITYSCAPES_INSTANCE_LABELS.get(int(value) // 1000) if value >= 1000 else None
        if cls not in names:
            continue
        ys, xs = np.nonzero(instance_ids == value)
        if len(ys) >= min_pixels:
            out.append(dict(name=names[cls], bbox=[int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1]))
    return out


def cityscapes_to_voc(cityscapes_root: str, out_dir: str, split: str = 'val', label_set: str = 'dwd',
                      image_dir: str = 'leftImg8bit', image_suffix: str = '_leftImg8bit.png',
                      min_pixels: int = 1) -> Tuple[str, int, int]:
    """Convert ``gtFine/<split>/<city>/*_gtFine_instanceIds.png`` with the images of ``image_dir`` (e.g.
    ``leftImg8bit_foggy`` and ``_leftImg8bit_foggy_beta_0.02.png`` for Foggy Cityscapes) to
    ``out_dir/VOC2007``. Returns ``(voc_dir, images, boxes)``. The source is only read."""
    if label_set not in LABEL_SETS:
        raise ValueError(f'unknown label set {label_set!r}; choose from {sorted(LABEL_SETS)}')
    gt_dir, img_dir = (osp.join(cityscapes_root, d, split) for d in ('gtFine', image_dir))
    for d in (gt_dir, img_dir):
        if not osp.isdir(d):
            raise DatasetLayoutError(f'Cityscapes folder {d} does not exist')
    labels = sorted(glob.glob(osp.join(gt_dir, '*', '*_gtFine_instanceIds.png')))
    if not labels:
        raise DatasetLayoutError(f'no */*_gtFine_instanceIds.png under {gt_dir}')
    voc_dir = osp.join(out_dir, 'VOC2007')
    if osp.abspath(voc_dir).startswith(osp.abspath(cityscapes_root) + os.sep):
        raise ValueError(f'{out_dir} lies inside the source {cityscapes_root}; write the VOC copy elsewhere')
    ids, n_boxes = [], 0
    for lab in labels:
        stem = osp.basename(lab)[:-len('_gtFine_instanceIds.png')]
        img_path = osp.join(img_dir, osp.basename(osp.dirname(lab)), stem + image_suffix)
        img = cv2.imread(img_path, cv2.IMREAD_COLOR)
        if img is None:
            raise DatasetLayoutError(f'image {img_path} of {lab} is missing or unreadable')
        inst = cv2.imread(lab, cv2.IMREAD_UNCHANGED)
        if inst is None or inst.ndim != 2 or inst.shape != img.shape[:2]:
            raise ValueError(f'{lab}: expected a one-channel 16-bit instance map of the image size {img.shape[:2]}, '
                             f'got {None if inst is None else inst.shape}')
        objects = instance_boxes(inst, label_set, min_pixels)
        write_voc_sample(voc_dir, stem, img, objects)
        ids.append(stem)
        n_boxes += len(objects)
    write_split(voc_dir, split, ids)
    return voc_dir, len(ids), n_boxes


def write_synthetic_voc(root: str, domains: Dict[str, str] = None, splits: Dict[str, int] = None,
                        size: Tuple[int, int] = (128, 256), difficult_below: int = 0,
                        label_set: str = 'dwd') -> Dict[str, str]:
    """The procedural scenes of :mod:`mmdg.datasets.synthetic` as a DWD-style dataset:
    ``root/<folder>/VOC2007/...`` for each ``{folder: generator style}`` of ``domains`` (default: every style
    under its own name), ``splits`` ``{name: count}`` (default ``train=200, test=50``; ``train`` draws the
    generator's training scenes, other splits its validation scenes). Boxes whose shorter side is below
    ``difficult_below`` pixels are marked difficult (left out of training and of the AP). ``label_set``:
    ``'dwd'`` (7 classes) or ``'cityscapes8'``. Idempotent."""
    from .synthetic import DOMAINS, make_sample
    domains = domains or {d: d for d in DOMAINS}
    splits = splits or dict(train=200, test=50)
    names = LABEL_SETS[label_set]
    out = {}
    for folder, style in domains.items():
        voc_dir = osp.join(root, folder, 'VOC2007')
        for split, n in splits.items():
            gen_split = 'train' if split == 'train' else 'val'
            ids = [f'{style}_{gen_split}_{i:06d}' for i in range(n)]
            for i, img_id in enumerate(ids):
                if osp.isfile(osp.join(voc_dir, 'Annotations', f'{img_id}.xml')):
                    continue
                img, _, boxes = make_sample(style, gen_split, i, size)
                objects = [dict(name=names[b['label']], bbox=b['bbox'],
                                difficult=int(min(b['bbox'][2] - b['bbox'][0], b['bbox'][3] - b['bbox'][1]) < difficult_below))
                           for b in boxes if b['label'] in names]
                write_voc_sample(voc_dir, img_id, np.ascontiguousarray(img[..., ::-1]), objects)
            write_split(voc_dir, split, ids)
        out[folder] = voc_dir
    return out
