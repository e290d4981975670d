"""SoRA's ``svd_source='random'``: the official code's initialisation order, reproduced on purpose."""
import math

import pytest
import torch
from torch import nn

from mmdg.adapters import inject_adapters
from mmdg.adapters.sora import SoRALinear


def _official_reference(w_pre: torch.Tensor, r: int, alpha: float, seed: int):
    """What the official code computes: separate q/k/v nn.Linear layers initialised by PyTorch, the SVD
    of that random init, then the pre-trained weight loaded over the residual."""
    torch.manual_seed(seed)
    s = alpha / r
    out = []
    for w_slice in w_pre.chunk(3, dim=0):
        rand = torch.empty_like(w_slice)
        nn.init.kaiming_uniform_(rand, a=math.sqrt(5))
        u, sv, vh = torch.linalg.svd(rand, full_matrices=False)
        root = (sv[-r:] / s).sqrt()
        a, b = root[:, None] * vh[-r:], u[:, -r:] * root[None]
        out.append(w_slice + s * b @ a)
    return torch.cat(out, 0)


def test_random_svd_source_adds_random_minor_components_to_the_pretrained_weight():
    torch.manual_seed(0)
    base = nn.Linear(32, 96)
    w_pre = base.weight.detach().clone()
    torch.manual_seed(7)
    layer = SoRALinear(base, r=4, alpha=8, num_slices=3, svd_source='random')
    assert torch.equal(layer.base.weight, w_pre)  # the residual is the pre-trained weight itself
    want = _official_reference(w_pre, r=4, alpha=8, seed=7)
    torch.testing.assert_close(layer.merged_weight(), want, rtol=1e-5, atol=1e-6)
    x = torch.randn(5, 32)
    torch.testing.assert_close(layer(x), x @ want.t() + base.bias, rtol=1e-5, atol=1e-5)
    # the default decomposes the pre-trained weight instead: a no-op at init
    default = SoRALinear(nn.Linear(32, 96), r=4, alpha=8, num_slices=3)
    assert default.svd_source == 'pretrained'
    assert not torch.allclose(layer.merged_weight(), w_pre)


def test_svd_source_through_inject_and_refused_when_unknown():
    import timm
    vit = timm.create_model('vit_small_patch14_dinov2', pretrained=False, num_classes=0, img_size=28,
                            embed_dim=64, depth=2, num_heads=2)
    w_pre = vit.blocks[1].attn.qkv.weight.detach().clone()
    inject_adapters(vit, dict(type='SoRA', r=4, alpha=4, blocks=(1, 2), svd_source='random'))
    assert torch.equal(vit.blocks[1].attn.qkv.base.weight, w_pre)
    with pytest.raises(ValueError, match='svd_source'):
        SoRALinear(nn.Linear(8, 8), r=2, svd_source='official')
