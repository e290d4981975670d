"""The adapter contract: block adapters, registration, all-or-nothing injection, composition, meta
device, dtype policy, EMA over shared parameters."""
import warnings

import pytest
import torch
from torch import nn

from conftest import tiny_vit
from mmdg.adapters import (ADAPTERS, AdapterLinear, BlockAdapter, adapter_modules, aux_losses, count_parameters,
                           inject_adapters, merge_adapters, register_adapter, trainable_state_dict)


class _Shift(BlockAdapter):
    """A tiny block adapter: adds a learned per-block vector to the block's output."""
    defaults = dict(dim=64, weight=1.0)
    aux_loss_name = 'loss_shift'

    def __init__(self, block, index, num_blocks, name='', shared=None, dim=64, weight=1.0):
        super().__init__(block, index, num_blocks, name=name, shared=shared)
        self.shift = nn.Parameter(torch.zeros(dim))
        self.common = shared['common']
        self.weight = weight

    @staticmethod
    def make_shared(cfg, like):
        return dict(common=nn.Parameter(torch.zeros(cfg['dim'], device=like.device)))

    def refine(self, x):
        return x + self.shift + self.common

    def aux_loss(self):
        return self.weight * self.shift.pow(2).sum()


@pytest.fixture
def shift_registered():
    register_adapter('TestShift')(_Shift)
    yield 'TestShift'
    ADAPTERS.pop('TestShift', None)


def test_block_adapter_wraps_blocks(shift_registered):
    model = tiny_vit('dinov2').eval()
    x = torch.randn(1, 3, 56, 56)
    with torch.no_grad():
        y0 = model(x)
    inject_adapters(model, dict(type='TestShift', blocks=(1, 3)))
    wrapped = [m for _, m in adapter_modules(model)]
    assert [type(m) for m in model.blocks] == [type(model.blocks[0]), _Shift, _Shift, type(model.blocks[3])]
    assert [(m.index, m.num_blocks, m.layer_name) for m in wrapped] == [(1, 4, 'blocks.1'), (2, 4, 'blocks.2')]
    assert wrapped[0].common is wrapped[1].common  # make_shared: one per injection
    assert (_Shift.target_kind, _Shift.mergeable, AdapterLinear.target_kind, AdapterLinear.mergeable) == \
        ('block', False, 'linear', True)
    with torch.no_grad():
        torch.testing.assert_close(model(x), y0)
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable == {'blocks.1.shift', 'blocks.1.common', 'blocks.2.shift'}  # the shared one listed once
    assert set(trainable_state_dict(model)) == {'blocks.1.shift', 'blocks.1.common', 'blocks.2.shift',
                                                'blocks.2.common'}
    assert count_parameters(model) == 3 * 64
    with torch.no_grad():
        wrapped[0].shift.fill_(0.5)
    assert aux_losses(model)['loss_shift'].item() == pytest.approx(0.25 * 64)
    # linear adapters compose with block adapters on other blocks, never inside them
    inject_adapters(model, dict(type='LoRA', r=2, blocks=(3, 4)))
    with pytest.raises(ValueError, match=r'blocks.1 is wrapped by a TestShift block adapter; adapters do not nest'):
        inject_adapters(model, dict(type='LoRA', r=2, blocks=(0, 2)))
    with pytest.raises(ValueError, match=r'blocks.3 holds a LoRA adapter at blocks.3.attn.qkv'):
        inject_adapters(model, dict(type='TestShift', blocks=(3, 4)))
    with pytest.raises(ValueError, match=r'blocks.2 is already wrapped by a TestShift adapter'):
        inject_adapters(model, dict(type='TestShift', blocks=(2, 3)))
    assert len(adapter_modules(model)) == 2 + 4  # both kinds; nothing changed by the refused calls
    assert all(p.requires_grad for _, m in adapter_modules(model) for n, p in m.named_parameters()
               if not n.startswith(('base.', 'block.')))  # the LoRA call kept the block adapters trainable
    with pytest.warns(UserWarning, match=r'2 TestShift adapter\(s\) cannot be folded .*blocks.1, blocks.2'):
        merged = merge_adapters(model)
    assert merged is model
    assert [type(m) for _, m in adapter_modules(model)] == [_Shift, _Shift]  # LoRA folded, blocks kept


def test_block_adapter_config_errors(shift_registered):
    with pytest.raises(ValueError, match='wraps whole transformer blocks .* "targets" must be None'):
        inject_adapters(tiny_vit('dinov2'), dict(type='TestShift', targets=('qkv',)))
    with pytest.raises(KeyError, match=r"does not take \['split_qkv'\]"):
        inject_adapters(tiny_vit('dinov2'), dict(type='TestShift', split_qkv=False))
    with pytest.raises(KeyError, match='already registered'):
        register_adapter('testshift')(type('Other', (BlockAdapter,), {}))
    with pytest.raises(TypeError, match='subclass of AdapterLinear or BlockAdapter'):
        register_adapter('Nope')(nn.Linear)
    assert list(ADAPTERS)[:6] == ['LoRA', 'PiSSA', 'SoRA', 'ALoRE', 'HTA', 'CLoRA']
