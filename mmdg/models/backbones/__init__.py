from .timm_vit import TimmViT
from mmdg.convert.vit import ARCHS, build_timm_vit, load_vit_weights

__all__ = ['TimmViT', 'ARCHS', 'build_timm_vit', 'load_vit_weights']
