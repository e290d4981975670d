"""Model-level helpers shared by segmentors and detectors."""
from torch import nn

from mmdg.adapters import adapter_modules, aux_losses


def _add_aux_losses(module: nn.Module, args, kwargs, output):
    if kwargs.get('mode') == 'loss' and isinstance(output, dict):
        output.update(aux_losses(module))
    return output


def attach_aux_losses(model: nn.Module) -> bool:
    """Make ``model(..., mode='loss')`` also return its adapters' auxiliary losses.

    One forward hook on the top-level model (any mmseg segmentor or mmdet detector, inside DDP too),
    so no segmentor or detector class needs a subclass. Returns whether a hook was attached.
    """
    if getattr(model, '_mmdg_aux_loss_handle', None) is not None:
        return True
    if not any(m.aux_loss_name for _, m in adapter_modules(model)):
        return False
    model._mmdg_aux_loss_handle = model.register_forward_hook(_add_aux_losses, with_kwargs=True)
    return True
