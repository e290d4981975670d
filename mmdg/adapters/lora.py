"""LoRA (Hu et al., 2021): ``W' = W + (alpha / r) B A`` with Kaiming-uniform ``A`` and zero ``B``."""
import math

from torch import nn

from .base import LowRankLinear, register_adapter


@register_adapter('LoRA')
class LoRALinear(LowRankLinear):
    train_bias = False  # as PEFT's default (bias='none')

    def __init__(self, base: nn.Linear, r: int = 16, alpha: float = 16, **kwargs):
        super().__init__(base, r=r, alpha=alpha, **kwargs)
        for a in self.lora_A:  # per slice, as a separate nn.Linear(d_in, r) would be initialised
            nn.init.kaiming_uniform_(a, a=math.sqrt(5))
