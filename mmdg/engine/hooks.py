"""Training hooks of mmdg."""
import math

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


def _scalar(value) -> float:
    # .item(): no autograd warning; no extra GPU sync either (mmengine's RuntimeInfoHook .item()s every loss)
    return value.item() if hasattr(value, 'item') else float(value)


class NonFiniteLossError(FloatingPointError):
    """The training loss became NaN or infinite."""


@HOOKS.register_module()
class NonFiniteLossHook(Hook):
    """Stops training at the first iteration whose loss is NaN or infinite, naming the iteration, the
    loss terms that went bad and the last checkpoint on disk.

    It runs before the checkpoint and EMA hooks of the same iteration, so the weights that saw the bad
    step are never saved: the last checkpoint stays the last good one. (mmdet's ``CheckInvalidLossHook``
    only checks every ``interval`` iterations, with a bare assertion.)
    """

    priority = 'VERY_HIGH'

    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        if not outputs or 'loss' not in outputs:
            return
        loss = _scalar(outputs['loss'])
        if math.isfinite(loss):
            return
        bad = ', '.join(f'{k}={_scalar(v):.4g}' for k, v in outputs.items()
                        if k.startswith('loss') and k != 'loss' and not math.isfinite(_scalar(v)))
        last = runner.message_hub.get_info('last_ckpt')
        raise NonFiniteLossError(
            f'training stopped: the loss is {loss} at iteration {runner.iter + 1}'
            + (f' ({bad})' if bad else '') + '. '
            + (f'The last good checkpoint is {last}; resume from it with --resume after lowering the learning '
               'rate or switching fp16 to bf16.' if last else 'No checkpoint had been written yet.'))


@HOOKS.register_module()
class RNGStateCheckpointHook(Hook):
    """Makes ``--resume`` continue the exact run: saves torch's random state (CPU and CUDA) in every
    checkpoint and restores it when training resumes, just before the loop starts.

    mmengine re-seeds on resume and replays the data loader up to the resumed iteration, which reproduces
    the data pipeline's numpy / Python random draws, but not the model's own torch draws (dropout, drop
    path, Mask2Former's point sampling) of the iterations already run: without this hook a resumed run
    diverges from an uninterrupted one from its first iteration.
    """

    priority = 'VERY_LOW'
    KEY = 'mmdg_torch_rng_state'

    def __init__(self):
        self._pending = None

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        import torch
        state = dict(cpu=torch.get_rng_state(),
                     cuda=torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [])
        if checkpoint.get('meta', {}).get('mmdg_sharded'):  # every process saves (FSDP2Strategy): each its own
            from mmengine.dist import all_gather_object
            state['ranks'] = all_gather_object(dict(state))
        checkpoint[self.KEY] = state

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        if getattr(runner, '_resume', False):  # not for load_from (fine-tuning from a checkpoint)
            self._pending = checkpoint.get(self.KEY)

    def before_train(self, runner) -> None:
        import torch
        if self._pending is None:
            return
        from mmengine.dist import get_rank, get_world_size
        ranks = self._pending.get('ranks')
        if ranks and len(ranks) == get_world_size():  # a sharded checkpoint keeps each process's state
            self._pending = ranks[get_rank()]
        torch.set_rng_state(self._pending['cpu'])
        cuda = self._pending['cuda']
        if cuda and torch.cuda.is_available() and len(cuda) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(cuda)
        runner.logger.info('torch random state restored from the resumed checkpoint')
        self._pending = None


@HOOKS.register_module()
class CheckpointDigestHook(Hook):
    """Writes the tuning method (``mmdg_method``) and a content digest of the weights into every checkpoint's
    ``meta`` (``mmdg_content_digest``), which
    every mmdg loader (``safe_torch_load``: tools, ``load_from``, ``--resume``) verifies: a checkpoint whose
    bytes changed after it was written (disk or copy errors leave the zip readable) stops with a message
    instead of scoring a damaged model. Runs after every other hook's ``before_save_checkpoint`` (EMA swaps
    its dicts there, the adapter-only hook drops entries)."""

    priority = 'LOWEST'

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        from mmdg.utils.checkpoint import DIGEST_KEY, METHOD_KEY, adapter_method, content_digest, is_sharded_state
        meta = checkpoint.setdefault('meta', {})
        if runner is not None:  # the method, which loading with another method's config refuses
            meta[METHOD_KEY] = adapter_method(runner.cfg.model.get('backbone'))
        if not is_sharded_state(checkpoint):  # shards: each process holds a part (DCP records their sizes)
            meta[DIGEST_KEY] = content_digest(checkpoint)


@HOOKS.register_module()
class CheckpointFitHook(Hook):
    """Checks a checkpoint that training loads (``load_from`` or ``--resume``) against the model before its
    weights go in: unexpected keys, other shapes, or weights the model expects from it that it lacks stop the
    run naming them (mmengine warns once per key and trains on: a checkpoint of another architecture gave a
    run from random weights after 127 warnings)."""

    priority = 'VERY_HIGH'

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        from mmdg.utils.checkpoint import check_state_dict_covers, unwrap_state_dict
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        source = getattr(runner, '_load_from', None) or 'the checkpoint to load'
        state = unwrap_state_dict(checkpoint, source)
        meta = checkpoint.get('meta') if isinstance(checkpoint.get('meta'), dict) else {}
        check_state_dict_covers(model, state, meta, source)
