"""Decode heads registered in the ``mmdg`` scope."""
from .rein_mask2former import ReinMask2FormerHead

__all__ = ['ReinMask2FormerHead']
