"""OpenMMLab glue: backbones and model helpers, registered in the ``mmdg`` scope."""
from .backbones import TimmViT  # noqa: F401
from .utils import attach_aux_losses  # noqa: F401
from .segmentors import SlideSafeEncoderDecoder  # noqa: F401
from .detectors import CoDINO  # noqa: F401
from .heads import ReinMask2FormerHead  # noqa: F401
