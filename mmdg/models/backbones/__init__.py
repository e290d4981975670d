from .timm_vit import TimmViT
from .vit_weights import ARCHS, build_timm_vit, load_vit_weights

__all__ = ['TimmViT', 'ARCHS', 'build_timm_vit', 'load_vit_weights']
