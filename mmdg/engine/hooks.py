"""Training hooks of mmdg."""
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper

from mmdg.adapters import trainable_parameter_names
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


@HOOKS.register_module()
class AdapterCheckpointHook(Hook):
    """Write small checkpoints: the backbone's trainable parameters (adapters, recipe biases) and every
    entry outside the backbone (head, neck), without the frozen pre-trained backbone weights.

    Such a checkpoint loads (``load_from``, ``tools/test.py``, ``init_model``) onto a model built from
    the same config, whose backbone holds the pre-trained weights (``pretrained=``) and recomputes
    SoRA's frozen residual from them, giving back the identical trained model.
    """

    priority = 'LOW'

    def __init__(self, backbone_prefix: str = 'backbone.'):
        self.backbone_prefix = backbone_prefix

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        trainable = trainable_parameter_names(model)
        state = checkpoint['state_dict']
        kept = {k: v for k, v in state.items() if not k.startswith(self.backbone_prefix) or k in trainable}
        checkpoint['state_dict'] = type(state)(kept)
        checkpoint.setdefault('meta', {})['mmdg_adapter_only'] = True
        runner.logger.info(f'adapter-only checkpoint: {len(kept)} of {len(state)} entries, '
                           f'{sum(v.numel() for v in kept.values()):,} of {sum(v.numel() for v in state.values()):,} values')


@HOOKS.register_module()
class WeightDecayLoggerHook(Hook):
    """Logs the largest weight decay over the parameter groups as ``weight_decay`` (the backbone's base
    group under the SoRA recipe), next to the learning rate."""

    priority = 'VERY_HIGH'

    def before_train_iter(self, runner, batch_idx: int, data_batch=None) -> None:
        groups = runner.optim_wrapper.param_groups
        runner.message_hub.update_scalar('train/weight_decay', max(g.get('weight_decay', 0.0) for g in groups))
