"""Every tuning method trains through the mmseg segmentor: the loss falls, frozen parts stay put."""
import pytest
import torch
from mmengine.optim import OptimWrapper
from mmengine.registry import init_default_scope
from mmengine.runner import Runner

from mmdg.adapters import AdapterLinear, BlockAdapter
from mmdg.apis.demo import METHODS, demo_config

pytestmark = pytest.mark.slow


@pytest.mark.parametrize('method', METHODS)
def test_a_few_steps_lower_the_loss(method, demo_data, tmp_path):
    init_default_scope('mmdg')
    from mmdg.registry import MODELS
    cfg = demo_config(method, data_root=demo_data, work_dir=str(tmp_path), num_workers=0)
    cfg.train_dataloader.batch_size = 4
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    model.init_weights()
    data = next(iter(Runner.build_dataloader(cfg.train_dataloader)))
    frozen_before = {n: p.detach().clone() for n, p in model.backbone.named_parameters() if not p.requires_grad}
    params = [p for p in model.parameters() if p.requires_grad]
    wrapper = OptimWrapper(torch.optim.AdamW(params, lr=2e-3))
    from mmdg.models.utils import attach_aux_losses
    attach_aux_losses(model)
    model.train()
    losses = []
    for _ in range(25):
        log = model.train_step(data, wrapper)
        losses.append(float(log['loss']))
    assert losses[-1] < 0.8 * losses[0], f'{method}: loss {losses[0]:.3f} -> {losses[-1]:.3f}'
    if method == 'clora':
        assert 'loss_sade' in log
    for n, p in model.backbone.named_parameters():
        if n in frozen_before:
            assert torch.equal(p, frozen_before[n]), f'{method}: frozen {n} changed'
    n_adapters = sum(isinstance(m, AdapterLinear) for m in model.modules())
    assert (n_adapters > 0) == (method not in ('full', 'frozen', 'scratch', 'rein'))
    if method == 'rein':
        assert any(isinstance(m, BlockAdapter) for m in model.modules())
