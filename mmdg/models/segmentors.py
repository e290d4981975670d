"""Segmentors: mmseg's, with one fix for query-based heads under sliding-window inference."""
from typing import List

from mmseg.models.segmentors import EncoderDecoder

from mmdg.registry import MODELS


@MODELS.register_module()
class SlideSafeEncoderDecoder(EncoderDecoder):
    """mmseg's ``EncoderDecoder`` whose decode head sees each sliding window's own shape as
    ``pad_shape``. mmseg 1.2.2's ``Mask2FormerHead.predict`` upsamples its masks to ``pad_shape``, the
    whole padded image, so every window's logits came out image-sized and the slide test crashed."""

    def encode_decode(self, inputs, batch_img_metas: List[dict]):
        window = tuple(inputs.shape[2:])
        batch_img_metas = [dict(m, pad_shape=window) for m in batch_img_metas]
        return super().encode_decode(inputs, batch_img_metas)
