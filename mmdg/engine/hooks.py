"""Training hooks of mmdg."""
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper

from mmdg.models.utils import attach_aux_losses
from mmdg.registry import HOOKS


@HOOKS.register_module()
class AdapterAuxLossHook(Hook):
    """Adds the adapters' auxiliary losses (e.g. CLoRA's ``loss_sade``) to the training loss dict of any
    mmseg segmentor or mmdet detector, where they are summed into the loss and logged.
    A no-op for methods without an auxiliary loss."""

    priority = 'VERY_HIGH'

    def before_train(self, runner) -> None:
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        if attach_aux_losses(model):
            runner.logger.info('adapter auxiliary losses attached to the training loss')
