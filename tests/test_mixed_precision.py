"""bf16 AMP with mmcv's deformable attention: mmdg runs the op in fp32 and hands bf16 back.

mmcv's CUDA kernel has no bf16 build; on a CPU the op takes a plain PyTorch path, so these tests stand a
fake kernel in for the CUDA one: it refuses bf16 as the real kernel does and computes with mmcv's own
PyTorch reference otherwise."""
import pytest
import torch
from mmcv.ops.multi_scale_deform_attn import multi_scale_deformable_attn_pytorch

from mmdg.models.mixed_precision import run_in_fp32_for_bf16

SHAPES = torch.tensor([[4, 6], [2, 3]])
LEVEL_START = torch.tensor([0, 24])


def fake_kernel_cls():
    class FakeDeformAttnFunction:
        seen = []

        @staticmethod
        def apply(value, shapes, level_start_index, locations, weights, im2col_step):
            FakeDeformAttnFunction.seen.append((value.dtype, torch.is_autocast_enabled('cpu')))
            if value.dtype == torch.bfloat16:
                raise RuntimeError('"ms_deform_attn_forward_cuda" not implemented for \'BFloat16\'')
            # as mmcv's op does: the sampling inputs follow value's dtype
            return multi_scale_deformable_attn_pytorch(value, shapes, locations.type_as(value),
                                                       weights.type_as(value))
    return FakeDeformAttnFunction


def inputs(dtype=torch.float32):
    g = torch.Generator().manual_seed(0)
    value = torch.randn(2, 30, 2, 8, generator=g).to(dtype).requires_grad_()
    locations = torch.rand(2, 5, 2, 2, 3, 2, generator=g)
    weights = torch.rand(2, 5, 2, 2, 3, generator=g).softmax(-1)
    return value, SHAPES, LEVEL_START, locations, weights, 64


def test_the_fake_kernel_fails_on_bf16_as_mmcv_does():
    fn = fake_kernel_cls()
    with pytest.raises(RuntimeError, match='BFloat16'):
        fn.apply(*inputs(torch.bfloat16))


def test_bf16_runs_in_fp32_and_comes_back_bf16_with_gradients():
    fn = fake_kernel_cls()
    assert run_in_fp32_for_bf16(fn) is True
    assert run_in_fp32_for_bf16(fn) is False  # idempotent: a second import does not wrap twice
    args = inputs(torch.bfloat16)
    with torch.autocast('cpu', dtype=torch.bfloat16):
        out = fn.apply(*args)
    assert out.dtype == torch.bfloat16
    assert fn.seen[-1] == (torch.float32, False)  # the kernel saw fp32 with autocast off
    ref = multi_scale_deformable_attn_pytorch(args[0].detach().float(), SHAPES, args[3], args[4])
    torch.testing.assert_close(out.float(), ref, atol=1e-2, rtol=1e-2)
    out.float().square().sum().backward()
    value = args[0]
    assert value.grad is not None and value.grad.dtype == torch.bfloat16 and value.grad.abs().sum() > 0


def test_fp32_inputs_reach_the_kernel_unchanged():
    fn = fake_kernel_cls()
    run_in_fp32_for_bf16(fn)
    args = inputs(torch.float32)
    out = fn.apply(*args)
    assert fn.seen == [(torch.float32, False)]
    torch.testing.assert_close(out, multi_scale_deformable_attn_pytorch(args[0], SHAPES, args[3], args[4]),
                               rtol=0, atol=0)


def test_importing_mmdg_models_patches_mmcvs_op():
    import mmdg.models  # noqa: F401
    from mmcv.ops.multi_scale_deform_attn import MultiScaleDeformableAttnFunction
    assert getattr(MultiScaleDeformableAttnFunction, '_mmdg_bf16_as_fp32', False)
