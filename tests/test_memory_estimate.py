"""tools/memory_estimate.py beyond one GPU: the depth probe that measures a model too large to build, the
per-GPU memory under DDP and FSDP, and the needs-sharding verdict."""
import re

import pytest

from mmdg.apis.memory import GIB, GPU_RESERVE, estimate, fit, per_gpu

DEMO = 'configs/demo/sora.py'
# the demo at 8 blocks (2 frozen, SoRA in the other 6) and a 64-pixel crop: enough blocks that the probe
# (4 and 6 blocks) extrapolates, small enough for seconds
DEEP = {'model.backbone.model_kwargs.depth': 8, 'model.backbone.out_indices': (1, 4, 6, 7),
        'model.backbone.adapter.blocks': (2, 8), 'model.backbone.img_size': 64}
FULL = {'model.backbone.adapter': None, 'model.backbone.frozen_blocks': 0}
FROZEN = {'model.backbone.adapter': None, 'model.backbone.freeze': True}


@pytest.fixture(scope='module')
def deep():
    """DEEP with the training crop (the input size the estimate reads) at 64 pixels."""
    from mmengine.config import Config
    pipeline = Config.fromfile(DEMO).train_dataloader.dataset.pipeline
    crop = [i for i, t in enumerate(pipeline) if t.type == 'RandomCrop'][0]
    return {**DEEP, f'train_dataloader.dataset.pipeline.{crop}.crop_size': (64, 64)}


@pytest.mark.parametrize('method', ['sora', 'full', 'frozen'])
def test_depth_probe_matches_the_full_build(deep, method):
    """Activations measured on 4- and 6-block copies and extrapolated to 8 blocks agree with the 8-block
    model itself; the frozen prefix (2 blocks, 1 in the probe) must count 0, or SoRA is off by ~2 blocks (a
    frozen backbone: every block is frozen and the probe varies those)."""
    opts = {**deep, **dict(full=FULL, frozen=FROZEN).get(method, {})}
    exact = estimate(DEMO, 4, False, False, opts, probe=False)
    probed = estimate(DEMO, 4, False, False, opts, probe=True)
    assert not exact['probed'] and probed['probed']
    assert probed['params'] == exact['params'] and probed['static'] == exact['static']
    act = lambda r: r['total'] - r['static']  # noqa: E731
    assert act(exact) > 0
    assert act(probed) == pytest.approx(act(exact), rel=0.03)
    assert probed['activations_per_image'] == pytest.approx(exact['activations_per_image'], rel=0.03)


def _est(params=7e9, trainable=5e7, ema=True, bf16=True, act=10 * GIB):
    return dict(params=params, trainable=trainable, block=params / 40, block_trainable=trainable / 27, ema=ema,
                bf16=bf16, fixed=act / 5, activations_per_image=act / 5, batch=4)


def test_fsdp_shards_the_static_part_and_ddp_does_not():
    est = _est()
    act = est['fixed'] + est['batch'] * est['activations_per_image']
    f1, f8, f16 = (per_gpu(est, n, 'fsdp') for n in (1, 8, 16))
    sharded = 16 * (f8 - f16)  # S / 8 - S / 16 = S / 16, whatever the constant gathered part
    assert sharded == pytest.approx(f1 - act, rel=1e-9)  # 1 GPU holds all of it
    assert act < f16 < f8 < f1
    assert per_gpu(est, 16, 'ddp') == per_gpu(est, 8, 'ddp') > per_gpu(est, 1, 'ddp')  # + DDP's buckets
    # frozen weights in bf16: FSDP on one GPU holds less than plain fp32 training of a mostly frozen model
    assert f1 < per_gpu(est, 1, 'ddp')
    assert per_gpu(_est(bf16=False), 1, 'fsdp') > f1
    with pytest.raises(ValueError, match='engine'):
        per_gpu(est, 8, 'zero3')


def test_one_gpu_ddp_is_the_single_gpu_estimate(deep):
    est = estimate(DEMO, 4, False, False, deep)
    assert per_gpu(est, 1, 'ddp') == pytest.approx(est['total'])


def test_verdict():
    est = _est()
    ddp8, fsdp8 = per_gpu(est, 8, 'ddp'), per_gpu(est, 8, 'fsdp')
    assert fsdp8 < ddp8
    verdict = lambda memory: fit(est, [8], memory)[0]['needs_sharding']  # noqa: E731
    assert verdict(ddp8 + GPU_RESERVE) == 'no'
    assert verdict(ddp8 + GPU_RESERVE - 1) == 'yes'
    assert verdict(fsdp8 + GPU_RESERVE) == 'yes'
    assert verdict(fsdp8 + GPU_RESERVE - 1) == 'no fit'
    rows = fit(est, [1, 8, 16], 80 * GIB)
    assert [r['gpus'] for r in rows] == [1, 8, 16]


def test_tool_prints_a_table_per_config_with_cfg_options(run_tool, deep):
    opts = [f'{k}={v}'.replace(' ', '') for k, v in deep.items()]
    res = run_tool('memory_estimate.py', DEMO, '--batch', '2', '--gpus', '1', '8', '16',
                   '--cfg-options', *opts, 'model.backbone.adapter=None', 'model.backbone.frozen_blocks=0')
    assert res.returncode == 0, res.stderr[-2000:]
    rows = re.findall(r'^\| (\d+) \| ([\d.]+) GiB \| ([\d.]+) GiB \| (.+) \|$', res.stdout, re.M)
    assert [r[0] for r in rows] == ['1', '8', '16'] and all(r[3] == 'no' for r in rows), res.stdout
    # the override reached the model: full fine-tuning trains most of the ViT, SoRA a small part of it
    from mmdg.apis.memory import load, parameter_counts
    full = float(re.search(r'([\d.]+) M trainable', res.stdout).group(1))
    assert full > 5 * parameter_counts(load(DEMO, deep))['trainable'] / 1e6
    # on a GPU too small for anything the verdict says so
    res = run_tool('memory_estimate.py', DEMO, '--batch', '1', '--gpus', '8', '--gpu-memory', '1',
                   '--cfg-options', *opts)
    assert res.returncode == 0, res.stderr[-2000:]
    assert re.search(r'^\| 8 \| .* \| no fit \|$', res.stdout, re.M), res.stdout
    res = run_tool('memory_estimate.py', DEMO, '--gpus', '0')
    assert res.returncode == 2 and '--gpus' in res.stderr
