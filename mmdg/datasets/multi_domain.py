"""Several target datasets in one loader, each sample tagged with its domain's name."""
from typing import Dict

from mmengine.dataset import ConcatDataset

from mmdg.registry import DATASETS


@DATASETS.register_module()
class MultiDomainDataset(ConcatDataset):
    """``domains``: ``{name: dataset config}`` (same classes). Every sample's ``data_samples`` carries
    ``metainfo['domain'] = name``, so that :class:`mmdg.evaluation.MultiDomainIoUMetric` scores each
    domain on its own images, whatever the batch size or sampler order, and without guessing the domain
    from a file path."""

    def __init__(self, domains: Dict[str, dict], **kwargs):
        if not domains:
            raise ValueError('MultiDomainDataset needs at least one domain')
        self.domain_names = list(domains)
        datasets = list(domains.values())
        if kwargs.get('lazy_init'):  # metainfo only (mmdet's init_detector asks so): nor do the domains read files
            datasets = [dict(d, lazy_init=True) if isinstance(d, dict) else d for d in datasets]
        super().__init__(datasets=datasets, **kwargs)
        self._metainfo['domains'] = self.domain_names

    def __getitem__(self, idx: int) -> dict:
        if not self._fully_initialized:
            self.full_init()
        which, local = self._get_ori_dataset_idx(idx)
        item = self.datasets[which][local]
        samples = item['data_samples']  # a list of views under test-time augmentation
        for sample in samples if isinstance(samples, list) else [samples]:
            sample.set_metainfo(dict(domain=self.domain_names[which]))
        return item
