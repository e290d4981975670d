"""PiSSA (Meng et al., 2024): SoRA's construction on the r *largest* singular components."""
from .sora import SoRALinear


class PiSSALinear(SoRALinear):
    components = 'principal'
