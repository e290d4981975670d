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


def _cuda_ops():
    if not torch.cuda.is_available():
        return False
    from mmcv.ops import get_compiling_cuda_version
    return get_compiling_cuda_version() != 'not available'


@pytest.mark.skipif(not _cuda_ops(), reason='needs a GPU and mmcv built with CUDA ops')
def test_on_a_gpu_mmcvs_kernel_refuses_bf16_and_the_cast_matches_fp32():
    """On a GPU: mmcv's own kernel refuses bf16 (the reason for the cast); through mmdg's cast, bf16 inputs
    give what mmcv's PyTorch reference gives on the same numbers in fp32, gradients included; and the
    whole module trains a step under bf16 autocast."""
    import mmdg.models  # noqa: F401
    from mmcv.ops import MultiScaleDeformableAttention
    from mmcv.ops.multi_scale_deform_attn import MultiScaleDeformableAttnFunction as fn
    value, shapes, start, locations, weights, step = (t.cuda() if torch.is_tensor(t) else t for t in inputs())
    value = value.detach().bfloat16().requires_grad_()
    with pytest.raises(RuntimeError, match='BFloat16'):
        fn._mmdg_original_apply(value, shapes, start, locations, weights, step)

    with torch.autocast('cuda', dtype=torch.bfloat16):
        out = fn.apply(value, shapes, start, locations, weights, step)
    assert out.dtype == torch.bfloat16
    out.float().square().sum().backward()
    value32 = value.detach().float().requires_grad_()
    ref = multi_scale_deformable_attn_pytorch(value32, shapes, locations, weights)
    ref.square().sum().backward()
    torch.testing.assert_close(out.float(), ref, atol=2e-2, rtol=2e-2)  # bf16 rounding of the output
    torch.testing.assert_close(value.grad.float(), value32.grad, atol=5e-2, rtol=5e-2)

    attn = MultiScaleDeformableAttention(embed_dims=64, num_heads=4, num_levels=2, num_points=3,
                                         batch_first=True).cuda()
    query = torch.randn(2, 30, 64, device='cuda', requires_grad=True)
    with torch.autocast('cuda', dtype=torch.bfloat16):
        y = attn(query, value=query, reference_points=torch.rand(2, 30, 2, 2, device='cuda'),
                 spatial_shapes=shapes, level_start_index=start)
    y.float().square().mean().backward()
    assert torch.isfinite(y.float()).all() and torch.isfinite(query.grad).all() and query.grad.abs().sum() > 0
