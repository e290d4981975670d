"""The adapter contract: block adapters, registration, all-or-nothing injection, composition, meta
device, dtype policy, EMA over shared parameters."""
import copy
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
    assert list(ADAPTERS)[:6] == ['LoRA', 'SoRA', 'PiSSA', 'ALoRE', 'HTA', 'CLoRA']


# --- inject_adapters: all-or-nothing, composable, never nests, meta device -----------------------------

def _snapshot(model):
    return {k: v.clone() for k, v in model.state_dict().items()}, {n: p.requires_grad for n, p in
                                                                    model.named_parameters()}


def test_a_failing_config_leaves_the_model_untouched():
    model = tiny_vit('dinov2')
    state, flags = _snapshot(model)
    with pytest.raises(ValueError, match=r"\['qvk'\] matched no nn.Linear"):
        inject_adapters(model, dict(type='SoRA', r=4, targets=('fc1', 'qvk')))
    assert not adapter_modules(model)
    after, after_flags = _snapshot(model)
    assert after_flags == flags and all(torch.equal(state[k], after[k]) for k in state)


def test_second_call_on_other_blocks_keeps_the_first_adapters():
    model = tiny_vit('dinov2')
    inject_adapters(model, dict(type='LoRA', r=2, targets=('qkv', 'fc1'), blocks=(0, 2)))
    inject_adapters(model, dict(type='SoRA', r=2, blocks=(2, 4)))
    first = model.blocks[0].attn.qkv
    assert first.lora_A.requires_grad and first.lora_B.requires_grad
    assert model.blocks[3].mlp.fc1.lora_A.requires_grad and not model.blocks[3].mlp.fc1.base.weight.requires_grad
    # different layers of the same blocks compose too
    inject_adapters(model, dict(type='HTA', targets=('proj',), blocks=(0, 2)))
    assert type(model.blocks[0].attn.proj).__name__ == 'HTALinear' and first.lora_A.requires_grad
    assert [c['type'] for c in model.mmdg_adapter_cfgs] == ['LoRA', 'SoRA', 'HTA']


def test_same_layers_are_refused_and_adapters_never_nest():
    model = tiny_vit('dinov2')
    inject_adapters(model, dict(type='SoRA', r=2, targets=('qkv',), blocks=(0, 2)))
    state, flags = _snapshot(model)
    with pytest.raises(ValueError, match=r'blocks.0.attn.qkv \(already a SoRA adapter\).*do not stack or nest'):
        inject_adapters(model, dict(type='LoRA', targets=('qkv',)))
    with pytest.raises(ValueError, match=r'blocks.0.attn.qkv.base \(inside the SoRA adapter at blocks.0.attn.qkv\)'):
        inject_adapters(model, dict(type='LoRA', targets=('*qkv*',)))
    after, after_flags = _snapshot(model)  # nothing changed, SoRA's residuals in particular
    assert after_flags == flags and all(torch.equal(state[k], after[k]) for k in state)
    assert not any(isinstance(m.base, AdapterLinear) for _, m in adapter_modules(model))


def test_meta_device_svd_warns_and_other_methods_keep_shapes():
    with torch.device('meta'):
        vit = tiny_vit('dinov2')
    with pytest.warns(UserWarning, match='SoRA on a meta-device model: the SVD of meta tensors has no values'):
        inject_adapters(vit, dict(type='SoRA', r=2, blocks=(0, 1)))
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        inject_adapters(vit, dict(type='LoRA', r=2, blocks=(1, 2)))
    assert vit.blocks[1].attn.qkv.lora_A.is_meta


@pytest.mark.parametrize('method', ['LoRA', 'PiSSA', 'SoRA', 'ALoRE', 'CLoRA'])
@pytest.mark.parametrize('alpha', [0, -4])
def test_alpha_must_be_positive(method, alpha):
    model = tiny_vit('dinov2')
    with pytest.raises(ValueError, match=r'alpha must be a finite number > 0'):
        inject_adapters(model, dict(type=method, alpha=alpha))
    assert not adapter_modules(model)


# --- dtype policy ------------------------------------------------------------------------------------

@pytest.mark.parametrize('dtype', [torch.bfloat16, torch.float16])
def test_half_models_keep_float32_adapter_masters(dtype):
    for method in ADAPTERS:
        if ADAPTERS[method].target_kind != 'linear':
            continue
        model = tiny_vit('dinov2', depth=2).eval().to(dtype)
        x = torch.randn(1, 3, 56, 56, dtype=dtype)
        with torch.no_grad():
            y0 = model(x).float()
            inject_adapters(model, dict(type=method))
            y1 = model(x)
        assert y1.dtype == dtype
        own = [p for _, m in adapter_modules(model) for n, p in m.named_parameters() if not n.startswith('base.')]
        assert own and all(p.dtype == torch.float32 for p in own), method
        rel = ((y1.float() - y0).norm() / y0.norm()).item()
        # only SoRA / PiSSA move: their frozen residual W - s B A is rounded to the model's dtype
        assert rel <= (0.02 if ADAPTERS[method].__name__ in ('SoRALinear', 'PiSSALinear') else 0), (method, rel)
        merge_adapters(model)
        assert all(m.weight.dtype == dtype for m in model.modules() if isinstance(m, nn.Linear))


def test_clora_sade_is_finite_in_fp16():
    model = tiny_vit('dinov2', depth=2).half()
    inject_adapters(model, dict(type='CLoRA'))
    assert aux_losses(model)['loss_sade'].item() == 0  # Q = 0: no overlap (was NaN: 0 / 0 in float16)
    fp32 = inject_adapters(tiny_vit('dinov2', depth=2), dict(type='CLoRA'))
    with torch.autocast('cpu', dtype=torch.float16):
        assert aux_losses(fp32)['loss_sade'].item() == 0
        with torch.no_grad():
            for _, m in adapter_modules(fp32):
                m.coef_Q.normal_(std=1e-3)
        loss = aux_losses(fp32)['loss_sade']
    assert loss.dtype == torch.float32 and torch.isfinite(loss) and loss.item() > 0


def test_sade_counts_every_slice_and_its_gradient_stays_bounded_near_zero():
    from mmdg.adapters import CLoRALinear
    single = CLoRALinear(nn.Linear(64, 64), r=4, num_bases=3, sade_weight=1.0)
    shared = {k: getattr(single, a) for k, a in (('bases_D_64x64', 'bases_D'), ('bases_U_64x64', 'bases_U'))}
    fused = CLoRALinear(nn.Linear(64, 192), r=4, num_bases=3, sade_weight=1.0, num_slices=3, shared=shared)
    with torch.no_grad():
        single.coef_Q.normal_()
        fused.coef_Q.copy_(single.coef_Q.expand(3, -1, -1, -1))
    # a fused qkv's three matrices weigh as much as three separate q, k, v layers
    torch.testing.assert_close(fused.aux_loss(), 3 * single.aux_loss())
    direction = torch.randn_like(single.coef_Q)
    grads = []
    for t in (1.0, 1e-2, 1e-4):
        single.coef_Q.grad = None
        with torch.no_grad():
            single.coef_Q.copy_(t * direction)
        single.aux_loss().backward()
        grads.append(single.coef_Q.grad.norm().item())
    # scale-free for large Q, bounded by ~1/sqrt(sade_eps) around the floor and fading out near the zero
    # init (a 1/|Q| gradient would be 10^4 times larger at t = 1e-4 than at t = 1)
    assert grads[2] < grads[0] and max(grads) < single.sade_eps ** -0.5, grads


def test_hta_first_updates_have_loras_scale():
    model = tiny_vit('dinov2')
    inject_adapters(model, dict(type='HTA'))
    for _, m in adapter_modules(model):
        assert m.w_down.abs().max() <= 1 / m.in_features ** 0.5  # LoRA's A bound (was a standard normal)


def test_alore_one_branch_per_input():
    model = tiny_vit('eva02-b')
    inject_adapters(model, dict(type='ALoRE'))
    attn, mlp = model.blocks[0].attn, model.blocks[0].mlp
    assert attn.q_proj.expert_D is attn.k_proj.expert_D is attn.v_proj.expert_D
    assert mlp.fc1_g.expert_U is mlp.fc1_x.expert_U and mlp.fc1_g.expert_U is not attn.q_proj.expert_U
    d, r, n, depth = 64, 4, 4, 4
    assert count_parameters(model) == depth * 2 * (2 * d * r) + n ** 3  # as DINOv2's qkv + fc1: 2 per block
    x = torch.randn(1, 3, 56, 56)
    with torch.no_grad():
        for p in model.parameters():
            if p.requires_grad:
                p.add_(torch.randn_like(p) * 0.05)
        y = model(x)
        merge_adapters(model)
        torch.testing.assert_close(model(x), y, rtol=1e-4, atol=1e-4)


# --- recipes: one fair bias set, EMA over each parameter once ----------------------------------------

def test_every_method_recipe_trains_the_same_biases_and_norms():
    import os.path as osp

    root = osp.join(osp.dirname(osp.dirname(osp.abspath(__file__))), 'configs', '_base_', 'methods')
    sets, deep = {}, tiny_vit('dinov2', depth=24)  # ViT-L's depth, small width
    for method in ('sora', 'pissa', 'lora', 'alore', 'hta', 'clora'):
        ns = {}  # the method files are plain dicts over their _base_; the adapter dict is all in them
        with open(osp.join(root, f'{method}.py')) as f:
            exec(f.read(), ns)
        cfg = ns['model']['backbone']['adapter']
        vit = inject_adapters(copy.deepcopy(deep), cfg)
        sets[method] = {n.replace('.base.', '.') for n, p in vit.named_parameters()
                        if p.requires_grad and (n.endswith('bias') or 'norm' in n)}
    # qkv 192 + proj 64 + fc1 256 + fc2 64 biases in each of blocks 8-23 (147,456 at ViT-L's width)
    assert sum(p.numel() for n, p in vit.named_parameters() if n.replace('.base.', '.') in sets['sora']) == 16 * 576
    for method, names in sets.items():
        assert names == sets['sora'], (method, sorted(names ^ sets['sora'])[:4])


def test_recipe_ema_moves_every_parameter_once_by_the_momentum():
    import glob
    import os.path as osp

    from mmengine.config import Config
    from mmengine.model import ExponentialMovingAverage
    root = osp.join(osp.dirname(osp.dirname(osp.abspath(__file__))), 'configs', '_base_', 'schedules')
    emas = [h for f in sorted(glob.glob(osp.join(root, '*.py')))
            for h in Config.fromfile(f).get('custom_hooks', []) if h['type'] == 'EMAHook']
    assert emas and all(h['update_buffers'] is False for h in emas)
    # ALoRE's kron_S and CLoRA's bases appear once per owning layer in state_dict()
    model = tiny_vit('dinov2', depth=2)
    inject_adapters(model, dict(type='ALoRE'))
    inject_adapters(model, dict(type='CLoRA', targets=('proj', 'fc2')))
    momentum = 0.1
    ema = ExponentialMovingAverage(model, momentum=momentum, update_buffers=emas[0]['update_buffers'])
    ema.update_parameters(model)  # the first step copies
    before = {n: p.detach().clone() for n, p in ema.module.named_parameters()}
    with torch.no_grad():
        for p in model.parameters():
            p.add_(1.0)
    ema.update_parameters(model)
    for n, p in ema.module.named_parameters():
        torch.testing.assert_close(p - before[n], torch.full_like(p, momentum), msg=n)


@pytest.mark.parametrize('dtype', [torch.float16, torch.bfloat16], ids=['fp16', 'bf16'])
@pytest.mark.parametrize('method', ['SoRA', 'LoRA', 'PiSSA', 'ALoRE', 'HTA', 'CLoRA', 'Rein'])
def test_an_adapted_model_cast_to_half_precision_runs_in_it(method, dtype):
    """``model.half()`` / ``model.to(torch.bfloat16)`` of an adapted ViT (the half-precision inference idiom,
    and what FSDP / DeepSpeed mixed precision do to parameters) casts the adapters' float32 masters too: the
    forward runs in that dtype, finite, within half-precision error of the float32 model."""
    import timm
    from mmdg.adapters import inject_adapters
    torch.manual_seed(0)
    vit = timm.create_model('vit_small_patch14_dinov2', pretrained=False, num_classes=0, depth=2, img_size=56)
    cfg = dict(type=method, **(dict(r=4, alpha=4) if method in ('SoRA', 'LoRA', 'PiSSA', 'CLoRA') else {}),
               **(dict(token_length=4, r=4) if method == 'Rein' else {}))
    inject_adapters(vit, cfg)
    with torch.no_grad():
        for p in vit.parameters():
            if p.requires_grad:  # a trained adapter, not the no-op of initialisation
                p.normal_(0, 0.02)
    x = torch.randn(2, 3, 56, 56)
    with torch.no_grad():
        ref = vit(x)
        out = vit.to(dtype)(x.to(dtype))
    assert out.dtype == dtype and torch.isfinite(out).all()
    assert all(p.dtype == dtype for p in vit.parameters())
    tol = (5e-3 if dtype == torch.float16 else 2e-2) * ref.abs().max()
    assert (out.float() - ref).abs().max() <= tol


# --- the declared contract and the family table --------------------------------------------------------
def test_every_method_declares_the_contract_and_registers_alike():
    import inspect

    from mmdg.adapters import ADAPTERS
    from mmdg.adapters.base import AdapterContract
    from mmdg.adapters.families import TARGETS
    assert list(ADAPTERS) == ['LoRA', 'SoRA', 'PiSSA', 'ALoRE', 'HTA', 'CLoRA', 'Rein']
    for name, cls in ADAPTERS.items():
        assert issubclass(cls, AdapterContract), name
        assert cls.default_targets in TARGETS and isinstance(cls.needs_weights, bool), name
        if cls.target_kind == 'linear':  # config fields are the constructor's keyword defaults, written once
            sig = inspect.signature(cls.__init__).parameters
            assert cls.defaults and all(sig[k].default == v for k, v in cls.defaults.items()), name
    assert ADAPTERS['SoRA'].needs_weights and ADAPTERS['PiSSA'].needs_weights and not ADAPTERS['LoRA'].needs_weights
    assert ADAPTERS['ALoRE'].shares_input_branch and ADAPTERS['ALoRE'].default_targets == 'input'
    assert ADAPTERS['HTA'].default_targets == 'attention' and not ADAPTERS['Rein'].mergeable


def test_a_new_method_gets_its_config_fields_from_its_constructor():
    import torch

    from mmdg.adapters import ADAPTERS, AdapterLinear, inject_adapters, register_adapter

    @register_adapter('ScaleTest')
    class ScaleLinear(AdapterLinear):
        def __init__(self, base, gain: float = 0.0, num_slices: int = 1, **kwargs):
            super().__init__(base, num_slices=num_slices, **kwargs)
            self.gain = torch.nn.Parameter(torch.tensor(float(gain)))

        def forward(self, x):
            return self.base(x) * (1 + self.gain)

        def merged_weight(self):
            return self.base.weight * (1 + self.gain)
    try:
        assert ScaleLinear.defaults == {'gain': 0.0}
        vit = tiny_vit()
        inject_adapters(vit, dict(type='ScaleTest', targets='fc2'))
        assert vit.blocks[0].mlp.fc2.gain.item() == 0.0 and vit.mmdg_adapter_cfgs[-1]['gain'] == 0.0
    finally:
        ADAPTERS.pop('ScaleTest')


@pytest.mark.parametrize('kind', ['dinov2', 'dinov2-reg4', 'eva02-s', 'eva02-b', 'dinov3', 'dinov3-qkvb', 'dinov3-7b'])
def test_the_family_table_describes_each_model(kind):
    from torch import nn

    from mmdg.adapters.families import family_of_arch
    family = family_of_arch(kind)
    model = tiny_vit(kind)
    linears = {n.rsplit('.', 1)[-1] for n, m in model.blocks[0].named_modules() if isinstance(m, nn.Linear)}
    assert linears <= set(family.linears), (kind, linears - set(family.linears))
    for part in (family.input_linears, family.attention_linears, *family.same_input):
        assert set(part) <= set(family.linears)
    names = [n for n, _ in model.named_parameters()]
    present = [k for k in family.zero_decay if any(k in n for n in names)]
    assert present, (kind, family.zero_decay)  # the family's zero-decay keys name real parameters


def test_every_arch_name_has_a_family():
    from mmdg.adapters.families import family_of_arch
    from mmdg.convert.vit import ARCHS
    assert {family_of_arch(a).name for a in ARCHS} == {'dinov2', 'eva02', 'dinov3'}
