"""bf16 training with mmcv's multi-scale deformable attention.

mmcv 2.1's CUDA kernel for multi-scale deformable attention (Mask2Former's pixel decoder, DINO's encoder
and decoder) is compiled for fp32 and fp16 only (it dispatches on floating types and half), and the op
casts its sampling inputs to the dtype of ``value``. Under bf16 autocast ``value`` comes out of a bf16
linear, so the first training step would stop with "not implemented for 'BFloat16'". mmdg runs that one
op in fp32 and hands bf16 back: the op is a weighted bilinear gather, cheap next to the ViT, and fp32 is
the more accurate choice anyway. fp32 and fp16 inputs reach mmcv's kernel unchanged, and the CPU path
(plain PyTorch ops) is not involved, so nothing changes for runs that worked before.
"""
import torch


def run_in_fp32_for_bf16(function_cls) -> bool:
    """Make ``function_cls.apply`` (an ``autograd.Function`` taking ``value, shapes, level_start_index,
    sampling_locations, attention_weights, im2col_step``) compute in fp32 when ``value`` is bf16, with
    autocast off inside, returning bf16. Gradients flow back through the casts. Idempotent; returns
    whether it patched now (False: already patched)."""
    if getattr(function_cls, '_mmdg_bf16_as_fp32', False):
        return False
    apply = function_cls.apply

    def apply_bf16_as_fp32(value, spatial_shapes, level_start_index, sampling_locations, attention_weights,
                           im2col_step):
        if value.dtype != torch.bfloat16:
            return apply(value, spatial_shapes, level_start_index, sampling_locations, attention_weights,
                         im2col_step)
        with torch.autocast(value.device.type, enabled=False):
            out = apply(value.float(), spatial_shapes, level_start_index, sampling_locations.float(),
                        attention_weights.float(), im2col_step)
        return out.to(torch.bfloat16)

    function_cls.apply = staticmethod(apply_bf16_as_fp32)
    function_cls._mmdg_bf16_as_fp32 = True
    function_cls._mmdg_original_apply = staticmethod(apply)  # mmcv's own, for tests and comparisons
    return True


def deform_attn_bf16_as_fp32() -> bool:
    """Apply :func:`run_in_fp32_for_bf16` to mmcv's ``MultiScaleDeformableAttnFunction`` (done once when
    ``mmdg.models`` is imported, which every mmdg config does through its registries)."""
    from mmcv.ops.multi_scale_deform_attn import MultiScaleDeformableAttnFunction
    return run_in_fp32_for_bf16(MultiScaleDeformableAttnFunction)
