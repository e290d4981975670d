"""Detection datasets in Pascal VOC layout, one folder per domain: Diverse Weather (DWD) and
Cityscapes / Foggy Cityscapes converted by ``tools/dataset_converters/cityscapes_to_dwd.py``.

Layout (``data_root`` holds one folder per domain; the ``VOC2007/`` level is optional)::

    data_root/<domain>/VOC2007/Annotations/<id>.xml
                              /JPEGImages/<id>.jpg
                              /ImageSets/Main/<split>.txt

The domain folder is found under any of the spellings seen in the wild (``daytime_clear``,
``Daytime-Clear``, ``daytime-clear``, ``DaytimeClear``: case and separators are ignored).
"""
from __future__ import annotations

import os
import os.path as osp
import re
import xml.etree.ElementTree as ET
from typing import List, Sequence

from mmdet.datasets import XMLDataset

from mmdg.registry import DATASETS

from .layouts import AnnotationError, DatasetLayoutError
from .dg_seg import refuse_repeated_entries

#: Diverse Weather classes, in the order of the benchmark.
DWD_CLASSES = ('bus', 'bike', 'car', 'motor', 'person', 'rider', 'truck')
#: Diverse Weather domains: train on the first, test on all.
DWD_DOMAINS = ('daytime_clear', 'night_sunny', 'dusk_rainy', 'night_rainy', 'daytime_foggy')
#: The 8 Cityscapes detection classes (Cityscapes -> Foggy Cityscapes), in Cityscapes' label order.
CITYSCAPES_DET_CLASSES = ('person', 'rider', 'car', 'truck', 'bus', 'train', 'motorcycle', 'bicycle')


def _key(name: str) -> str:
    return re.sub(r'[^a-z0-9]', '', name.lower())


def find_domain_dir(data_root: str, domain: str) -> str:
    """The folder of ``domain`` under ``data_root``: the exact name, else the one spelling it with other
    case or separators."""
    if not osp.isdir(data_root):
        raise DatasetLayoutError(f'dataset root {data_root} does not exist')
    if osp.isdir(osp.join(data_root, domain)):
        return osp.join(data_root, domain)
    found = sorted(d for d in os.listdir(data_root) if osp.isdir(osp.join(data_root, d)))
    matches = [d for d in found if _key(d) == _key(domain)]
    if len(matches) > 1:
        raise DatasetLayoutError(f'{data_root}: several folders spell domain {domain!r}: {matches}')
    if not matches:
        raise DatasetLayoutError(f'{data_root}: no folder for domain {domain!r} (case and "-", "_" are ignored); '
                                 f'folders there: {found}')
    return osp.join(data_root, matches[0])


def find_voc_dir(domain_dir: str) -> str:
    """``domain_dir/VOC2007`` if present, else ``domain_dir`` itself; it must hold ``Annotations/``."""
    for cand in (osp.join(domain_dir, 'VOC2007'), domain_dir):
        if osp.isdir(osp.join(cand, 'Annotations')):
            return cand
    raise DatasetLayoutError(f'{domain_dir}: no Annotations/ folder (looked in {domain_dir}/VOC2007/Annotations '
                             f'and {domain_dir}/Annotations)')


class VOCDomainDataset(XMLDataset):
    """One domain of a VOC-per-domain benchmark (base class: subclasses set ``METAINFO``).

    Args:
        data_root: the folder holding the domain folders.
        domain: the domain's folder name (any spelling, see :func:`find_domain_dir`).
        split: ``ImageSets/Main/<split>.txt`` lists the images, or ``'all'``: every ``Annotations/*.xml``.
        ignore_classes: object names in the XML files that are skipped; any other name outside the
            classes is an error (mmdet's VOC reader would drop it silently).
    """

    def __init__(self, data_root: str, domain: str, split: str = 'train', ignore_classes: Sequence[str] = (),
                 **kwargs):
        self.domain, self.split = domain, split
        self.ignore_classes = set(ignore_classes)
        if kwargs.get('lazy_init'):  # metainfo only (mmdet's init_detector asks so): no file is read now
            super().__init__(data_root=data_root, ann_file='', data_prefix=dict(sub_data_root=''), **kwargs)
            return
        voc_dir = find_voc_dir(find_domain_dir(data_root, domain))
        for sub in ('Annotations', kwargs.get('img_subdir', 'JPEGImages')):
            if not osp.isdir(osp.join(voc_dir, sub)):
                raise DatasetLayoutError(f'{type(self).__name__}: folder {osp.join(voc_dir, sub)} does not exist')
        ann_file = ''
        if split != 'all':
            ann_file = osp.join('ImageSets', 'Main', f'{split}.txt')  # BaseDataset joins it to data_root
            if not osp.isfile(osp.join(voc_dir, ann_file)):
                main = osp.join(voc_dir, 'ImageSets', 'Main')
                have = sorted(f[:-4] for f in os.listdir(main) if f.endswith('.txt')) if osp.isdir(main) else []
                raise DatasetLayoutError(f'{type(self).__name__}: split file {osp.join(voc_dir, ann_file)} does not exist '
                                         f"(splits there: {have}; split='all' reads every Annotations/*.xml)")
        super().__init__(data_root=voc_dir, ann_file=ann_file, data_prefix=dict(sub_data_root=''), **kwargs)

    def load_data_list(self) -> List[dict]:
        if self.split != 'all':
            data_list = super().load_data_list()
            refuse_repeated_entries(data_list, 'img_id', self.ann_file, type(self).__name__)
        else:
            self.cat2label = {c: i for i, c in enumerate(self._metainfo['classes'])}
            ann_dir = osp.join(self.sub_data_root, self.ann_subdir)
            ids = sorted(f[:-4] for f in os.listdir(ann_dir) if f.endswith('.xml'))
            data_list = [self.parse_data_info(dict(img_id=i, file_name=osp.join(self.img_subdir, f'{i}.jpg'),
                                                   xml_path=osp.join(ann_dir, f'{i}.xml'))) for i in ids]
        usable = sum(not inst['ignore_flag'] for d in data_list for inst in d['instances'])
        if data_list and not usable and not self.test_mode:
            # training would draw crops forever and stop with mmengine's "Cannot find valid image after 1000"
            raise AnnotationError(f'{type(self).__name__} {self.sub_data_root} ({self.split}): none of its '
                                  f'{len(data_list)} images has a box to train on (every box is of no area, '
                                  'difficult or of an ignored class)')
        return data_list

    def parse_data_info(self, img_info: dict):
        if not osp.isfile(img_info['xml_path']):
            raise DatasetLayoutError(f'{type(self).__name__}: annotation {img_info["xml_path"]} listed in '
                                     f'{self.ann_file or "Annotations/"} does not exist')
        self._xml_path = img_info['xml_path']  # for the error message of _parse_instance_info
        try:
            info = super().parse_data_info(img_info)
        except ET.ParseError as err:
            raise AnnotationError(f'{self._xml_path}: not a readable VOC XML file (truncated or corrupt: {err})') \
                from None
        w, h = info.get('width'), info.get('height')
        for i, inst in enumerate(info.get('instances', [])):
            x1, y1, x2, y2 = inst['bbox']
            if x2 < x1 or y2 < y1:
                raise AnnotationError(f'{self._xml_path}: object {i}: inverted box (xmin, ymin, xmax, ymax) = '
                                      f'{self._raw_box(i)}')
            if w and h and (x2 < 0 or y2 < 0 or x1 >= w or y1 >= h):
                raise AnnotationError(f'{self._xml_path}: object {i}: box {self._raw_box(i)} lies outside the '
                                      f'{w}x{h} image')
            if x2 == x1 or y2 == y1:
                inst['ignore_flag'] = 1  # a box of no area teaches nothing; mmdet would crop it away later
        return info

    def _raw_box(self, i: int):
        obj = ET.parse(self._xml_path).findall('object')[i].find('bndbox')
        return tuple(obj.find(k).text for k in ('xmin', 'ymin', 'xmax', 'ymax'))

    def _parse_instance_info(self, raw_ann_info, minus_one: bool = True) -> List[dict]:
        classes = self._metainfo['classes']
        for i, obj in enumerate(raw_ann_info.findall('object')):
            name = (obj.findtext('name') or '').strip()
            if not name:
                raise AnnotationError(f'{self._xml_path}: object {i} has no <name>')
            if name not in classes and name not in self.ignore_classes:
                raise ValueError(f'{self._xml_path}: unknown class {name!r}; {type(self).__name__} has classes '
                                 f'{list(classes)} (ignore_classes=[...] skips names on purpose)')
            if name not in classes:
                continue
            difficult = obj.find('difficult')
            if difficult is not None and not (difficult.text or '').strip().isdigit():
                raise AnnotationError(f'{self._xml_path}: object {i} ({name}): <difficult> is '
                                      f'{difficult.text!r}, not 0 or 1')
            box = obj.find('bndbox')
            if box is None:
                raise AnnotationError(f'{self._xml_path}: object {i} ({name}) has no <bndbox>')
            for key in ('xmin', 'ymin', 'xmax', 'ymax'):
                text = (box.findtext(key) or '').strip()
                try:
                    float(text)
                except ValueError:
                    raise AnnotationError(f'{self._xml_path}: object {i} ({name}): <{key}> is {text!r}, not a '
                                          'number') from None
        return super()._parse_instance_info(raw_ann_info, minus_one=minus_one)


@DATASETS.register_module()
class DiverseWeatherDataset(VOCDomainDataset):
    """Diverse Weather (Daytime-Clear, Night-Sunny, Dusk-Rainy, Night-Rainy, Daytime-Foggy): 7 classes."""
    METAINFO = dict(classes=DWD_CLASSES,
                    palette=[(0, 60, 100), (119, 11, 32), (0, 0, 142), (0, 0, 230), (220, 20, 60), (255, 0, 0),
                             (0, 0, 70)])


@DATASETS.register_module()
class CityscapesDetDataset(VOCDomainDataset):
    """Cityscapes / Foggy Cityscapes boxes (from the instance ids) in VOC layout: 8 classes."""
    METAINFO = dict(classes=CITYSCAPES_DET_CLASSES,
                    palette=[(220, 20, 60), (255, 0, 0), (0, 0, 142), (0, 0, 70), (0, 60, 100), (0, 80, 100),
                             (0, 0, 230), (119, 11, 32)])

