"""Datasets of mmdg. The demo's procedural scenes live in :mod:`mmdg.datasets.synthetic` (plain numpy);
label conventions in :mod:`~mmdg.datasets.label_maps`, converters in :mod:`~mmdg.datasets.converters`."""
from .dg_seg import (ACDCDataset, BDD100KDGDataset, CityscapesDGDataset, DGSegDataset, GTA5Dataset,
                     MapillaryCS19Dataset, SYNTHIADataset, UrbanSynDataset)
from .multi_domain import MultiDomainDataset
from .transforms import ImageDecodeError, LoadAnnotationsChecked, LoadImageChecked

__all__ = ['MultiDomainDataset', 'DGSegDataset', 'GTA5Dataset', 'SYNTHIADataset', 'UrbanSynDataset',
           'CityscapesDGDataset', 'BDD100KDGDataset', 'MapillaryCS19Dataset', 'ACDCDataset', 'LoadImageChecked',
           'LoadAnnotationsChecked', 'ImageDecodeError']
from .dwd import CityscapesDetDataset, DiverseWeatherDataset, VOCDomainDataset  # noqa: E402  (detection)
