"""Loading transforms that fail with a message naming the file, instead of an assertion deep in a
dataloader worker (an undecodable image) or silently wrong training (a label value outside the classes,
which mmseg's loss and IoU would otherwise ignore or count in the wrong bin)."""
import os.path as osp

import numpy as np
from mmcv.transforms import LoadImageFromFile
from mmseg.datasets.transforms import LoadAnnotations

from mmdg.registry import TRANSFORMS

from .layouts import LabelSizeError, LabelValueError, check_exif_orientation


class ImageDecodeError(OSError):
    """An image file that exists but cannot be decoded."""


@TRANSFORMS.register_module()
class LoadImageChecked(LoadImageFromFile):
    """``LoadImageFromFile`` whose failure names the file and the reason; an image with a side shorter than
    ``min_side`` pixels (an 8192x2 strip: resizing it for the model gives a side of 0 px, and OpenCV fails
    naming nothing) is refused the same way."""

    def __init__(self, min_side: int = 8, **kwargs):
        super().__init__(**kwargs)
        self.min_side = min_side

    def transform(self, results: dict):
        try:
            out = super().transform(results)
        except (AssertionError, ValueError, OSError, RuntimeError) as exc:
            if not osp.exists(results['img_path']):
                raise ImageDecodeError(f'{results["img_path"]}: does not exist (deleted or moved after the dataset '
                                       'was listed, or a link whose target is gone)') from exc
            raise ImageDecodeError(f'{results["img_path"]}: cannot be decoded as an image '
                                   f'(truncated, corrupt or not an image file): {exc}') from exc
        check_exif_orientation(results['img_path'])
        h, w = out['img'].shape[:2]
        if min(h, w) < self.min_side:
            raise ImageDecodeError(f'{results["img_path"]}: an image of {w}x{h} px (WxH); a side shorter than '
                                   f'{self.min_side} px shrinks to nothing when resized for the model')
        return out


@TRANSFORMS.register_module()
class LoadAnnotationsChecked(LoadAnnotations):
    """mmseg's ``LoadAnnotations`` plus a check that the label has one channel, the size of its image
    (when the image was loaded first, as in every mmdg pipeline) and only values in ``[0, num_classes)``
    or ``ignore_index``, naming the file and what is wrong. A label of another size would otherwise be
    rescaled with the image by the resize transforms and train silently on misaligned pixels."""

    def __init__(self, num_classes: int = 19, ignore_index: int = 255, **kwargs):
        super().__init__(**kwargs)
        self.num_classes, self.ignore_index = num_classes, ignore_index

    def transform(self, results: dict):
        # an image without a label at all (mmseg's inference_model / MMSegInferencer on a config's test
        # pipeline remove a transform named 'LoadAnnotations' only, so this one sees their bare images)
        if 'seg_map_path' not in results:
            return results
        return super().transform(results)

    def _load_seg_map(self, results: dict) -> None:
        path = results['seg_map_path']
        try:
            super()._load_seg_map(results)
        except (AttributeError, AssertionError, ValueError, OSError, RuntimeError) as exc:
            # mmcv decodes a broken file to None and mmseg fails on None.squeeze(), naming no file
            what = 'does not exist' if not osp.exists(path) else 'cannot be decoded as an image (truncated or corrupt)'
            raise ImageDecodeError(f'{path}: label file {what}: {exc}') from exc
        seg = results['gt_seg_map']
        if seg.ndim != 2:
            raise LabelValueError(f'{path}: a label must have one channel (class ids), got shape {seg.shape}; '
                                  'is this a colour visualisation instead of the label file?')
        image = results.get('ori_shape')  # the decoded image's size, before any resize
        if image is not None and tuple(seg.shape[:2]) != tuple(image[:2]):
            raise LabelSizeError(f'{path}: label of size {seg.shape[1]}x{seg.shape[0]} (WxH), its image '
                                 f'{results.get("img_path", "")} is {image[1]}x{image[0]}; a label must match '
                                 'its image pixel for pixel. Check the pair (tools/dataset_converters/'
                                 'check_dataset.py checks a whole dataset) or convert with '
                                 '--resize-labels-to-images')
        bad = (seg >= self.num_classes) & (seg != self.ignore_index)
        if bad.any():
            values = sorted(int(v) for v in np.unique(seg[bad]))
            raise LabelValueError(f'{path}: label value(s) {values} outside the {self.num_classes} classes '
                                  f'(0..{self.num_classes - 1}, {self.ignore_index} = ignore). Unconverted '
                                  'labels? See tools/dataset_converters/convert_labels.py')
