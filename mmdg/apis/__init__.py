"""High-level entry points: inference (``init_model``, ``inference_model``, ``draw_result`` as mmseg's apis),
evaluation on mmengine's test loop (``evaluation``, ``tta``), the demos, verified adapter merging (``merge``)."""
from .inference import draw_result, inference_model, init_model

__all__ = ['init_model', 'inference_model', 'draw_result']
