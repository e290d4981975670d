"""What differs between the ViT families mmdg adapts, in one table (plain Python; see CONTRIBUTING.md,
"Adding a backbone family").

A family names the linear layers of its blocks in timm's spelling, which of them read the block's
normalised input and which belong to attention (the default targets of input-side and attention-only
methods), the sibling layers that read one input (separate q/k/v projections, SwiGLU's two input
branches: an input-side method puts one branch in front of each group), and its parameters that take no
weight decay (tokens, position grids, layer scales). The injector's defaults and the optimizer's zero-decay
keys are the union over this table, so one model of any family needs no per-family code elsewhere.
"""
from dataclasses import dataclass
from typing import Iterable, Tuple


@dataclass(frozen=True)
class ViTFamily:
    name: str
    #: mmdg architecture names of the family start with this (``dinov2-l``, ``eva02-b``, ``dinov3-7b``)
    arch_prefix: str
    #: every linear layer of a block, in block order
    linears: Tuple[str, ...]
    #: the layers that read the block's normalised input
    input_linears: Tuple[str, ...]
    #: the attention layers
    attention_linears: Tuple[str, ...]
    #: groups of sibling layers that read the same input
    same_input: Tuple[Tuple[str, ...], ...] = ()
    #: parameter-name fragments that take no weight decay (besides every normalisation layer)
    zero_decay: Tuple[str, ...] = ()


FAMILIES = (
    # EVA02: S fuses qkv (with separate q / v biases beside it), B and L split q/k/v and use a SwiGLU MLP
    ViTFamily('eva02', 'eva02', linears=('qkv', 'q_proj', 'k_proj', 'v_proj', 'proj', 'fc1', 'fc1_g', 'fc1_x', 'fc2'),
              input_linears=('qkv', 'q_proj', 'k_proj', 'v_proj', 'fc1', 'fc1_g', 'fc1_x'),
              attention_linears=('qkv', 'q_proj', 'k_proj', 'v_proj', 'proj'),
              same_input=(('q_proj', 'k_proj', 'v_proj'), ('fc1_g', 'fc1_x')),
              zero_decay=('pos_embed', 'cls_token', 'gamma')),
    # DINOv2 (timm's VisionTransformer): fused qkv, MLP; layer scale ls1 / ls2; -reg4 adds register tokens
    ViTFamily('dinov2', 'dinov2', linears=('qkv', 'proj', 'fc1', 'fc2'), input_linears=('qkv', 'fc1'),
              attention_linears=('qkv', 'proj'),
              zero_decay=('pos_embed', 'cls_token', 'reg_token', 'mask_token', 'ls1', 'ls2')),
    # DINOv3 (timm's Eva): fused qkv, RoPE (no position grid), 4 register tokens, layer scale gamma_1 / gamma_2;
    # the 7B's MLP is SwiGLU
    ViTFamily('dinov3', 'dinov3', linears=('qkv', 'proj', 'fc1', 'fc1_g', 'fc1_x', 'fc2'),
              input_linears=('qkv', 'fc1', 'fc1_g', 'fc1_x'), attention_linears=('qkv', 'proj'),
              same_input=(('fc1_g', 'fc1_x'),), zero_decay=('cls_token', 'reg_token', 'gamma')),
)


def union(parts: Iterable[Tuple[str, ...]]) -> Tuple[str, ...]:
    """The names of several tuples, each once, in first-seen order."""
    return tuple(dict.fromkeys(name for part in parts for name in part))


def family_of_arch(arch: str) -> ViTFamily:
    for family in FAMILIES:
        if arch.startswith(family.arch_prefix):
            return family
    raise KeyError(f'{arch!r} belongs to no ViT family; known: {[f.name for f in FAMILIES]}')


#: What the injector targets by default for each role (``AdapterLinear.default_targets``), over all families.
TARGETS = dict(all=union(f.linears for f in FAMILIES), input=union(f.input_linears for f in FAMILIES),
               attention=union(f.attention_linears for f in FAMILIES))
SAME_INPUT = union(f.same_input for f in FAMILIES)
ZERO_DECAY = union(f.zero_decay for f in FAMILIES)
