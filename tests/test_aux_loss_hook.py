"""Adapters' auxiliary losses reach any mmengine model's loss dict through one forward hook."""
import pytest
import torch
from mmengine.model import BaseModel
from mmengine.optim import OptimWrapper

from conftest import tiny_vit
from mmdg.adapters import inject_adapters
from mmdg.models.utils import attach_aux_losses


class _AnyDetector(BaseModel):
    """Stands for an mmdet detector or mmseg segmentor: forward(inputs, data_samples, mode)."""

    def __init__(self, method):
        super().__init__()
        self.backbone = inject_adapters(tiny_vit('dinov2'), dict(type=method, r=4))

    def forward(self, inputs, data_samples=None, mode='tensor'):
        feats = self.backbone.forward_features(inputs)
        if mode == 'loss':
            return dict(loss_task=feats.pow(2).mean())
        return feats


def test_sade_is_added_and_trained():
    model = _AnyDetector('CLoRA')
    assert attach_aux_losses(model) and attach_aux_losses(model)  # idempotent: one hook
    with torch.no_grad():
        for n, p in model.named_parameters():
            if 'coef_Q' in n:
                p.normal_()
    wrapper = OptimWrapper(torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=1e-2))
    log = model.train_step(dict(inputs=torch.randn(2, 3, 56, 56)), wrapper)
    assert set(log) == {'loss', 'loss_task', 'loss_sade'}
    assert float(log['loss']) == pytest.approx(float(log['loss_task']) + float(log['loss_sade']), rel=1e-6)
    assert log['loss_sade'] > 0
    assert isinstance(model(torch.randn(1, 3, 56, 56), mode='tensor'), torch.Tensor)  # other modes untouched


def test_methods_without_aux_loss_attach_nothing():
    model = _AnyDetector('SoRA')
    assert not attach_aux_losses(model)
    assert not model._forward_hooks
