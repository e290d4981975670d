"""The DG segmentation datasets, all with the 19 Cityscapes classes and train-id labels.

Each class only knows its dataset's public layout (``layouts.LAYOUTS``, one home shared with the
converters and the checker); reading, pipelines and metrics are mmseg's. Unlike mmseg's base class,
a missing label file is an error at start-up that names the file, not a crash in a worker hours later.
"""
import os.path as osp
from typing import List, Optional

from mmseg.datasets import BaseSegDataset, CityscapesDataset as _MMSegCityscapes

from mmdg.registry import DATASETS

from .layouts import DatasetLayoutError, layout

ACDC_CONDITIONS = ('fog', 'night', 'rain', 'snow')


class DGSegDataset(BaseSegDataset):
    """Base of the datasets below: ``split`` / ``condition`` fill in the layout's folders and suffixes
    unless ``data_prefix`` / ``img_suffix`` / ``seg_map_suffix`` are given explicitly.
    ``with_labels=False`` lists images only (a test split whose labels a benchmark server keeps)."""
    METAINFO = _MMSegCityscapes.METAINFO
    layout_name = ''

    def __init__(self, split: Optional[str] = None, condition: Optional[str] = None, with_labels: bool = True,
                 **kwargs):
        spec = layout(self.layout_name, split, condition)
        prefix = dict(img_path=spec['img_path'], seg_map_path=spec['seg_map_path'])
        if not with_labels:
            del prefix['seg_map_path']
        kwargs.setdefault('data_prefix', prefix)
        kwargs.setdefault('img_suffix', spec['img_suffix'])
        kwargs.setdefault('seg_map_suffix', spec['seg_map_suffix'])
        super().__init__(**kwargs)

    def load_data_list(self) -> List[dict]:
        img_dir = self.data_prefix.get('img_path', '')
        if not self.ann_file and not osp.isdir(img_dir):
            raise DatasetLayoutError(f'{type(self).__name__}: image folder {img_dir} does not exist '
                                     '(see docs/datasets.md for the layout)')
        data_list = super().load_data_list()
        if not data_list:
            raise DatasetLayoutError(f'{type(self).__name__}: no *{self.img_suffix} image under {img_dir}')
        if self.ann_file:
            refuse_repeated_entries(data_list, 'img_path', self.ann_file, type(self).__name__)
        missing = [d['seg_map_path'] for d in data_list if 'seg_map_path' in d and not osp.isfile(d['seg_map_path'])]
        if missing:
            raise DatasetLayoutError(
                f'{type(self).__name__}: {len(missing)} of {len(data_list)} label files are missing, e.g. '
                f'{missing[0]}. Convert the labels first (tools/dataset_converters/convert_labels.py) '
                'or check the layout with tools/dataset_converters/check_dataset.py')
        return data_list


def refuse_repeated_entries(data_list: List[dict], key: str, list_file: str, owner: str) -> None:
    """A list file naming an image twice would score (or train on) it twice while the counts look right."""
    seen, repeated = set(), []
    for d in data_list:
        if d[key] in seen:
            repeated.append(d[key])
        seen.add(d[key])
    if repeated:
        raise DatasetLayoutError(f'{owner}: {list_file} lists {len(repeated)} image(s) more than once, e.g. '
                                 f'{repeated[0]}; each would count twice. Remove the repeated lines')


@DATASETS.register_module()
class GTA5Dataset(DGSegDataset):
    """GTA5: ``images/*.png``, ``labels/*_labelTrainIds.png`` (converted from its Cityscapes label ids)."""
    layout_name = 'gta5'


@DATASETS.register_module()
class SYNTHIADataset(DGSegDataset):
    """SYNTHIA-RAND-CITYSCAPES: ``RGB/*.png``, ``GT/LABELS/*_labelTrainIds.png`` (converted)."""
    layout_name = 'synthia'


@DATASETS.register_module()
class CityscapesDGDataset(DGSegDataset):
    """Cityscapes: ``leftImg8bit/<split>/<city>/*_leftImg8bit.png``, ``gtFine/<split>/...labelTrainIds.png``."""
    layout_name = 'cityscapes'

    def __init__(self, split: str = 'val', **kwargs):
        super().__init__(split=split, **kwargs)


@DATASETS.register_module()
class BDD100KDGDataset(DGSegDataset):
    """BDD100K 10k: ``images/10k/<split>/*.jpg``, ``labels/sem_seg/masks/<split>/*.png`` (train ids)."""
    layout_name = 'bdd100k'

    def __init__(self, split: str = 'val', **kwargs):
        super().__init__(split=split, **kwargs)


@DATASETS.register_module()
class UrbanSynDataset(DGSegDataset):
    """UrbanSyn: ``rgb/rgb_XXXX.png``, ``labelTrainIds/rgb_XXXX.png`` (converted from ``ss/ss_XXXX.png``,
    whose 19 = unlabeled becomes 255)."""
    layout_name = 'urbansyn'


@DATASETS.register_module()
class MapillaryCS19Dataset(DGSegDataset):
    """Mapillary Vistas v1.2 mapped to the 19 Cityscapes classes: ``<split>/images/*.jpg``,
    ``<split>/labelTrainIds/*.png`` (written by the converter). ``half_resolution=True`` reads the
    validation set at half size instead (``half/validation/...``), the copy the official evaluation
    scores, written by ``convert_labels.py mapillary <root> --half-val``."""
    layout_name = 'mapillary'

    def __init__(self, split: str = 'validation', half_resolution: bool = False, **kwargs):
        self.half_resolution = half_resolution
        if half_resolution:
            if split != 'validation':
                raise ValueError(f'half_resolution=True exists for the validation split only, not {split!r}')
            self.layout_name = 'mapillary_half'
        super().__init__(split=split, **kwargs)

    def load_data_list(self) -> List[dict]:
        if self.half_resolution and not self.ann_file:
            for folder in (self.data_prefix.get('img_path', ''), self.data_prefix.get('seg_map_path', '')):
                if not osp.isdir(folder):
                    raise DatasetLayoutError(
                        f'{type(self).__name__}: the half-resolution validation folder {folder} does not exist; '
                        f'make it with: python tools/dataset_converters/convert_labels.py mapillary '
                        f'{self.data_root or "<mapillary root>"} --half-val')
        return super().load_data_list()


@DATASETS.register_module()
class ACDCDataset(DGSegDataset):
    """ACDC, one condition (fog, night, rain, snow): ``rgb_anon/<condition>/<split>/<sequence>/``,
    ``gt/<condition>/<split>/<sequence>/*_gt_labelTrainIds.png``. The ``test`` split has no public labels:
    it is read without them (``with_labels=False``), for predictions scored by the ACDC server."""
    layout_name = 'acdc'

    def __init__(self, condition: str, split: str = 'val', **kwargs):
        if condition not in ACDC_CONDITIONS:
            raise ValueError(f'ACDC condition {condition!r} is not one of {ACDC_CONDITIONS}')
        kwargs.setdefault('with_labels', split != 'test')
        super().__init__(split=split, condition=condition, **kwargs)
