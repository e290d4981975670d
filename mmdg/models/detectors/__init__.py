"""Detectors: Co-DINO (collaborative hybrid assignment training on mmdet's DINO)."""
from .co_dino import CoATSSHead, CoDINO, CoDINOHead, CoStandardRoIHead  # noqa: F401
