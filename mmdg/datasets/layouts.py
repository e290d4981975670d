"""Where each DG segmentation dataset keeps its images and labels, and the errors a dataset, a transform or
a converter raises about them. The runtime datasets and transforms read this module; the offline label
converters (``mmdg.datasets.converters``) use it too."""
from typing import Dict, Optional


class DatasetLayoutError(FileNotFoundError):
    """A folder or file the dataset's layout requires is missing."""


class LabelValueError(ValueError):
    """A label image holds a value outside its dataset's convention."""


class LabelSizeError(LabelValueError):
    """A label image whose size differs from its image's."""


class AnnotationError(ValueError):
    """A box annotation file that cannot be read as what it should be (truncated XML, a field missing or empty,
    a box outside its image or inverted), named with the file and the object."""


class CorruptFileError(OSError):
    """A file that exists but cannot be read as what it should be (truncated, corrupt, another format)."""


#: Where each dataset's images and 19-class train-id labels live (relative to its root), as mmdg's
#: datasets read them. ``{split}`` / ``{condition}`` are filled in by the dataset or the checker.
LAYOUTS: Dict[str, dict] = {
    'gta5': dict(img_path='images', seg_map_path='labels', img_suffix='.png',
                 seg_map_suffix='_labelTrainIds.png'),
    'synthia': dict(img_path='RGB', seg_map_path='GT/LABELS', img_suffix='.png',
                    seg_map_suffix='_labelTrainIds.png'),
    'cityscapes': dict(img_path='leftImg8bit/{split}', seg_map_path='gtFine/{split}',
                       img_suffix='_leftImg8bit.png', seg_map_suffix='_gtFine_labelTrainIds.png'),
    'bdd100k': dict(img_path='images/10k/{split}', seg_map_path='labels/sem_seg/masks/{split}',
                    img_suffix='.jpg', seg_map_suffix='.png'),
    'mapillary': dict(img_path='{split}/images', seg_map_path='{split}/labelTrainIds', img_suffix='.jpg',
                      seg_map_suffix='.png'),
    # Mapillary's validation images and labels at half size, as the official evaluation scores them
    # (written by ``convert_labels.py mapillary <root> --half-val``).
    'mapillary_half': dict(img_path='half/validation/images', seg_map_path='half/validation/labelTrainIds',
                           img_suffix='.jpg', seg_map_suffix='.png'),
    # UrbanSyn: the converter writes ``labelTrainIds/rgb_XXXX.png`` next to ``rgb/rgb_XXXX.png`` (the
    # release's ``ss/ss_XXXX.png`` hold 19 for unlabeled and their names do not match the images').
    'urbansyn': dict(img_path='rgb', seg_map_path='labelTrainIds', img_suffix='.png', seg_map_suffix='.png'),
    'acdc': dict(img_path='rgb_anon/{condition}/{split}', seg_map_path='gt/{condition}/{split}',
                 img_suffix='_rgb_anon.png', seg_map_suffix='_gt_labelTrainIds.png'),
}


def layout(name: str, split: Optional[str] = None, condition: Optional[str] = None) -> dict:
    if name not in LAYOUTS:
        raise KeyError(f'unknown dataset {name!r}; known: {sorted(LAYOUTS)}')
    spec = dict(LAYOUTS[name])
    for key in ('img_path', 'seg_map_path'):
        if '{split}' in spec[key] and split is None:
            raise ValueError(f'{name} needs a split (e.g. train / val)')
        if '{condition}' in spec[key] and condition is None:
            raise ValueError(f'{name} needs a condition (fog, night, rain or snow)')
        spec[key] = spec[key].format(split=split, condition=condition)
    return spec


class ImageOrientationError(ValueError):
    """An image whose EXIF orientation tag makes decoders rotate it away from its label's pixel grid."""


#: EXIF orientation values -> what a viewer (and OpenCV's decoder, which the loaders use) does to the image.
_ORIENTATIONS = {2: 'mirrored', 3: 'rotated 180 degrees', 4: 'flipped', 5: 'transposed', 6: 'rotated 90 degrees',
                 7: 'transversed', 8: 'rotated 270 degrees'}


def check_exif_orientation(path: str) -> None:
    """Refuse an image (JPEG, TIFF, WebP) carrying an EXIF orientation other than 1: OpenCV and viewers rotate
    or mirror it when decoding, its label (a PNG without the tag) stays on the stored grid, so the pairs would
    disagree: silently for a square image. The converters' checks and the training loader call this alike."""
    if not path.lower().endswith(('.jpg', '.jpeg', '.tif', '.tiff', '.webp')):
        return
    from PIL import Image
    try:
        with Image.open(path) as im:
            tag = im.getexif().get(0x0112, 1)
    except Exception:  # noqa: BLE001  (an unreadable file is reported by the decoder itself)
        return
    if tag not in (None, 0, 1):
        raise ImageOrientationError(
            f'{path}: its EXIF orientation tag ({tag}: {_ORIENTATIONS.get(tag, "unknown")}) makes decoders turn the '
            'image while its label stays on the stored pixel grid; strip the tag (exiftool -Orientation=1 -n) or '
            'turn image and label together')
