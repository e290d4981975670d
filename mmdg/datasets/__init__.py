"""Datasets of mmdg. The demo's procedural scenes live in :mod:`mmdg.datasets.synthetic` (plain numpy)."""
from .multi_domain import MultiDomainDataset

__all__ = ['MultiDomainDataset']
