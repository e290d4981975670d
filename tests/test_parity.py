"""docs/parity.md: the configs against the official recipes, regenerated and checked on every run."""
import copy

import pytest


@pytest.fixture(scope='module')
def parity():
    from mmdg.utils import parity
    return parity


@pytest.fixture(scope='module')
def configs(parity):
    return parity.load_all()


def test_the_doc_is_current_and_every_difference_documented(run_tool):
    proc = run_tool('parity.py', '--check')
    assert proc.returncode == 0, proc.stderr + proc.stdout


def test_every_config_has_an_official_recipe(parity, configs):
    assert len(configs) >= 20
    assert all(parity.recipe_of(name) in parity.OFFICIAL for name in configs)


SORA = 'sora/sora_dinov2-l_mask2former_1xb4-40k_gta5-to-cbm-512x512.py'


@pytest.mark.parametrize('setting, change', [
    ('EMA', lambda c: c.custom_hooks[-1].update(begin_iter=0)),
    ('train resize', lambda c: c.train_dataloader.dataset.pipeline[2].update(max_size=1024)),
    ('batch per GPU', lambda c: c.train_dataloader.update(batch_size=2)),
    ('validation targets', lambda c: c.val_dataloader.dataset.domains.mapillary.update(half_resolution=False)),
    ('patch kernel 14 -> 16', lambda c: c.model.backbone.update(patch_resample='pinv')),
    ('backbone lr', lambda c: c.optim_wrapper.paramwise_cfg.custom_keys.backbone.update(lr_mult=0.1)),
    ('lr warm-up', lambda c: c.param_scheduler.insert(0, dict(type='LinearLR', start_factor=0.1, begin=0, end=10))),
    ('checkpoints', lambda c: c.default_hooks.checkpoint.update(save_best='mean/mIoU')),
    ('mean/mIoU over', lambda c: c.val_evaluator.update(mean_over=['cityscapes'])),
    ('position grid at other input sizes', lambda c: c.model.backbone.update(pos_resample='timm')),
    # the Mask2Former head: every value of the official model config is a row
    ('decode_head.loss_dice.loss_weight', lambda c: c.model.decode_head.loss_dice.update(loss_weight=1.0)),
    ('decode_head.train_cfg.num_points', lambda c: c.model.decode_head.train_cfg.update(num_points=4096)),
    ('decode_head.train_cfg.assigner.match_costs.0.weight',
     lambda c: c.model.decode_head.train_cfg.assigner.match_costs[0].update(weight=1.0)),
    ('decode_head.num_queries', lambda c: c.model.decode_head.update(num_queries=50)),
])
def test_a_drifting_value_is_caught(parity, configs, setting, change):
    cfg = copy.deepcopy(configs[SORA])
    assert not parity.undocumented({SORA: cfg})
    change(cfg)
    problems = parity.undocumented({SORA: cfg})
    assert any(f': {setting}: ' in p or f': {setting} (mmdg: ' in p for p in problems), problems
    assert parity.render({SORA: cfg}) != parity.render({SORA: configs[SORA]})


def test_documented_differences_have_their_official_switch(parity, configs):
    """Each deliberate difference names a switch; applying the SVD and annealing switches to the SoRA
    config makes those rows equal to the official ones."""
    cfg = copy.deepcopy(configs[SORA])
    cfg.model.backbone.adapter.svd_source = 'random'
    for s in cfg.param_scheduler:
        if s.type == 'AnnealedWeightDecay':
            s.keep_zero = False
    rows = {r['setting']: r['status'] for r in parity.compare(SORA, cfg)}
    assert rows['SVD of'] == 'same' and rows['zero-decay groups while annealing'] == 'same'


def test_the_recipe_values_themselves(configs):
    """A few official values checked here directly (not through the tool's own descriptions)."""
    c = configs[SORA]
    resize = c.train_dataloader.dataset.pipeline[2]
    assert resize.type == 'RandomChoiceResize' and resize.resize_type == 'ResizeShortestEdge'
    assert list(resize.scales) == [int(512 * x * 0.1) for x in range(5, 21)] and resize.max_size == 2048
    ema = [h for h in c.custom_hooks if h.type == 'EMAHook'][0]
    assert ema.begin_iter == 12000 and not ema.update_buffers
    full = configs['full/full_dinov2-l_mask2former_1xb4-40k_gta5-to-cbm-512x512.py']
    assert full.optim_wrapper.paramwise_cfg.custom_keys.backbone.lr_mult == 0.01
    c2bm = configs['sora/sora_dinov2-l_mask2former_1xb8-40k_cityscapes-to-bm-512x512.py']
    assert c2bm.train_dataloader.batch_size == 8 and c2bm.param_scheduler[0].end == 1500
    acdc = configs['sora/sora_dinov2-l_mask2former_4xb2-40k_cityscapes-to-acdc-1024x1024.py']
    assert acdc.auto_scale_lr.base_batch_size == 8 and acdc.param_scheduler[0].start_factor == 1e-6


def test_train_warns_when_the_total_batch_differs_from_the_recipe(configs, monkeypatch, capsys):
    from mmdg.utils.tool_config import check_total_batch
    cfg = copy.deepcopy(configs['sora/sora_dinov2-l_mask2former_4xb2-40k_cityscapes-to-acdc-1024x1024.py'])
    monkeypatch.setenv('WORLD_SIZE', '4')
    check_total_batch(cfg)
    assert 'warning' not in capsys.readouterr().err  # 4 GPUs x 2 is the recipe
    monkeypatch.setenv('WORLD_SIZE', '1')
    check_total_batch(cfg)
    err = capsys.readouterr().err
    assert 'warning' in err and '= 2 images per step, the recipe with 8' in err
    assert not cfg.auto_scale_lr.enable
    check_total_batch(cfg, auto_scale=True)  # mmengine's Runner then scales the lr by 2 / 8
    assert cfg.auto_scale_lr.enable and cfg.auto_scale_lr.base_batch_size == 8
