"""PiSSA (Meng et al., 2024): SoRA's construction on the r *largest* singular components."""
from .base import register_adapter
from .sora import SoRALinear


@register_adapter('PiSSA')
class PiSSALinear(SoRALinear):
    components = 'principal'
