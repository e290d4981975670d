"""Datasets of mmdg. The demo's procedural scenes live in :mod:`mmdg.datasets.synthetic` (plain numpy)."""
