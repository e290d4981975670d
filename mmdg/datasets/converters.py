"""Label converters and layout checks of the DG segmentation datasets (GTA5, SYNTHIA, UrbanSyn,
Cityscapes, Mapillary v1.2, BDD100K, ACDC), behind the scripts in ``tools/dataset_converters/``.

Every converter lists its (label, output) pairs from the dataset's public layout, refuses to write over
any source file, checks every label value against the source convention (an unexpected value stops the
run and names the file and the value), converts on several processes with a progress bar, and writes
all-or-nothing: outputs go to temporary files that are renamed only once every file has converted.
:func:`make_mapillary_half_val` writes Mapillary's half-resolution validation set the same way.
"""
from __future__ import annotations

import glob
import os
import os.path as osp
from dataclasses import dataclass, field, replace
from multiprocessing import Pool
from typing import Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np
from PIL import Image

from mmdg.utils.atomic import TMP_PREFIX, remove_stale_temporaries

from .label_maps import (CITYSCAPES_CLASSES, CITYSCAPES_NUM_LABEL_IDS, GTA5_ID_TO_TRAIN_ID, IGNORE_INDEX,
                         MAPILLARY_V12_CLASSES, MAPILLARY_V12_ID_TO_TRAIN_ID, SYNTHIA_CLASSES,
                         SYNTHIA_ID_TO_TRAIN_ID, URBANSYN_ID_TO_TRAIN_ID, URBANSYN_UNLABELED)


from .layouts import LAYOUTS, CorruptFileError, DatasetLayoutError, LabelSizeError, LabelValueError, layout  # noqa: F401,E501  (re-exported)
from .layouts import check_exif_orientation


# ----------------------------------------------------------------------------------------------------
# Reading and mapping one label image
@dataclass(frozen=True)
class LabelConvention:
    """How a dataset stores labels: ``num_ids`` valid source values (0..num_ids-1), the map to train
    ids (``None``: already train ids, 255 allowed), which reader decodes the file, and whether 255 is a
    valid source value (ignored) besides 0..num_ids-1."""
    name: str
    num_ids: int
    to_train_id: Optional[Dict[int, int]]
    reader: str = 'index'  # 'index': one channel (gray or palette); 'synthia': red channel of 16-bit RGB
    ignore_ok: bool = False

    @property
    def allows_ignore(self) -> bool:
        return self.to_train_id is None or self.ignore_ok

    def lut(self) -> np.ndarray:
        table = np.full(max(self.num_ids, IGNORE_INDEX + 1), IGNORE_INDEX, np.uint8)
        if self.to_train_id is None:
            table[:self.num_ids] = np.arange(self.num_ids)
        else:
            for src, dst in self.to_train_id.items():
                table[src] = dst
        return table

    def allowed(self) -> np.ndarray:
        ok = np.zeros(max(self.num_ids, IGNORE_INDEX + 1), bool)
        ok[:self.num_ids] = True
        if self.allows_ignore:
            ok[IGNORE_INDEX] = True
        return ok


CONVENTIONS = {
    'gta5': LabelConvention('GTA5 (Cityscapes label ids)', CITYSCAPES_NUM_LABEL_IDS, GTA5_ID_TO_TRAIN_ID),
    'cityscapes': LabelConvention('Cityscapes label ids', CITYSCAPES_NUM_LABEL_IDS, GTA5_ID_TO_TRAIN_ID),
    'synthia': LabelConvention('SYNTHIA class ids', len(SYNTHIA_CLASSES), SYNTHIA_ID_TO_TRAIN_ID, 'synthia'),
    'mapillary': LabelConvention('Mapillary v1.2', len(MAPILLARY_V12_CLASSES), MAPILLARY_V12_ID_TO_TRAIN_ID),
    'urbansyn': LabelConvention(f'UrbanSyn ({URBANSYN_UNLABELED} = unlabeled)', URBANSYN_UNLABELED + 1,
                                URBANSYN_ID_TO_TRAIN_ID, ignore_ok=True),
    'train_ids': LabelConvention('Cityscapes train ids', len(CITYSCAPES_CLASSES), None),
}


def read_label(path: str, reader: str = 'index') -> np.ndarray:
    if reader == 'synthia':
        # SYNTHIA's 16-bit PNGs hold the class in the red channel (cv2 reads BGR: channel 2).
        arr = cv2.imread(path, cv2.IMREAD_UNCHANGED)
        if arr is None:
            raise LabelValueError(f'{path}: cannot be decoded as an image')
        return arr[..., 2] if arr.ndim == 3 else arr
    try:
        with Image.open(path) as im:
            arr = np.asarray(im)
    except Exception as exc:  # PIL raises several types for broken files
        raise LabelValueError(f'{path}: cannot be decoded as an image ({exc})') from exc
    if arr.ndim != 2:
        raise LabelValueError(f'{path}: a label must have one channel (class ids), got shape {arr.shape}; '
                              'is this a colour visualisation instead of the label file?')
    return arr


def check_values(arr: np.ndarray, conv: LabelConvention, path: str, ignore_unknown: bool = False) -> List[int]:
    """Returns the unexpected values (raises unless ``ignore_unknown``)."""
    values = np.unique(arr)
    ok = conv.allowed()
    bad = [int(v) for v in values if v >= len(ok) or not ok[v]]
    if bad and not ignore_unknown:
        valid = f'0..{conv.num_ids - 1}' + (' or 255' if conv.allows_ignore else '')
        raise LabelValueError(f'{path}: label value(s) {bad} outside the {conv.name} range ({valid}). '
                              'Wrong folder or dataset? (--ignore-unknown maps them to 255)')
    return bad


def _image_size(path: str) -> Optional[Tuple[int, int]]:
    """(height, width) from the file's header; an image a decoder would turn (EXIF orientation) is refused,
    as the training loader refuses it."""
    check_exif_orientation(path)
    try:
        with Image.open(path) as im:  # reads the header only
            return im.size[1], im.size[0]
    except (OSError, ValueError, SyntaxError) as exc:  # PIL's errors for a truncated or foreign file
        raise CorruptFileError(f'{path}: cannot be read as an image (truncated, corrupt or not an image '
                               f'file: {exc}); replace it from the dataset release') from None


@dataclass
class _Job:
    src: str
    dst: Optional[str]          # None: check only
    conv: LabelConvention
    image: Optional[str] = None
    ignore_unknown: bool = False
    resize_to_image: bool = False
    half_image: Optional[str] = None  # set: write the image at half size here, and the label at half size


#: Mapillary's half-resolution validation set as the official evaluation makes it: (w // 2, h // 2),
#: images bicubic (PIL, saved as JPEG at PIL's default quality), labels nearest.
HALF_JPEG_QUALITY = 75


def _halve(image: str, label: np.ndarray, image_dst: str) -> np.ndarray:
    with Image.open(image) as im:
        size = (im.size[0] // 2, im.size[1] // 2)
        im.resize(size, resample=Image.BICUBIC).save(image_dst, format='JPEG', quality=HALF_JPEG_QUALITY)
    return np.asarray(Image.fromarray(label).resize(size, resample=Image.NEAREST))


def _process(job: _Job):
    arr = read_label(job.src, job.conv.reader)
    bad = check_values(arr, job.conv, job.src, job.ignore_unknown)
    lut = job.conv.lut()
    out = lut[np.minimum(arr, len(lut) - 1)]  # out-of-table values were rejected (or ignored) above
    if bad:  # only reached with ignore_unknown
        out[np.isin(arr, bad)] = IGNORE_INDEX
    mismatch = None
    if job.image is not None:
        size = _image_size(job.image)
        if size != out.shape:
            mismatch = (job.src, out.shape, size)
            if job.resize_to_image:
                out = cv2.resize(out, (size[1], size[0]), interpolation=cv2.INTER_NEAREST)
    if job.dst is not None and (mismatch is None or job.resize_to_image):
        os.makedirs(osp.dirname(job.dst), exist_ok=True)
        if job.half_image is not None:
            os.makedirs(osp.dirname(job.half_image), exist_ok=True)
            out = _halve(job.image, out, job.half_image)
        if not cv2.imwrite(job.dst, out):
            raise OSError(f'could not write {job.dst}')
    hist = np.bincount(np.where(out == IGNORE_INDEX, len(CITYSCAPES_CLASSES), out).ravel(),
                       minlength=len(CITYSCAPES_CLASSES) + 1)
    return hist, bad, mismatch


@dataclass
class Report:
    """What a conversion or a check found: file count, pixel share per train id, odd files."""
    files: int = 0
    pixels: np.ndarray = field(default_factory=lambda: np.zeros(len(CITYSCAPES_CLASSES) + 1, np.int64))
    unknown_values: Dict[str, List[int]] = field(default_factory=dict)
    size_mismatches: List[Tuple[str, tuple, tuple]] = field(default_factory=list)
    written: List[str] = field(default_factory=list)

    def summary(self) -> str:
        total = max(int(self.pixels.sum()), 1)
        rows = [f'{self.files} label files; pixel share per class (ignored: '
                f'{100 * self.pixels[-1] / total:.1f}%):']
        rows += [f'  {name:<14s}{100 * n / total:6.2f}%' for name, n in zip(CITYSCAPES_CLASSES, self.pixels)]
        if self.unknown_values:
            rows.append(f'{len(self.unknown_values)} files had unknown values mapped to 255, e.g. '
                        f'{next(iter(self.unknown_values.items()))}')
        if self.size_mismatches:
            rows.append(f'{len(self.size_mismatches)} labels differ in size from their image, e.g. '
                        f'{self.size_mismatches[0]}')
        return '\n'.join(rows)


def _run(jobs: Sequence[_Job], nproc: int, progress: bool) -> List[tuple]:
    if progress:
        from mmengine.utils import track_parallel_progress, track_progress
        if nproc > 1:
            return track_parallel_progress(_process, list(jobs), nproc, chunksize=8)
        return track_progress(_process, list(jobs))
    if nproc > 1:
        with Pool(nproc) as pool:
            return pool.map(_process, jobs, chunksize=8)
    return [_process(j) for j in jobs]


def convert(pairs: Sequence[Tuple[str, str]], dataset: str, images: Optional[Sequence[str]] = None,
            nproc: int = 2, ignore_unknown: bool = False, resize_to_images: bool = False,
            progress: bool = True, overwrite: bool = False) -> Report:
    """Converts ``(source label, output)`` pairs to train ids; all-or-nothing (see the module doc).
    Existing outputs are replaced only with ``overwrite``: they may be the dataset's own files (e.g.
    Cityscapes' ``*_labelTrainIds.png`` rendered from polygons by cityscapesScripts)."""
    if not pairs:
        raise DatasetLayoutError(f'no {dataset} label files found')
    conv = CONVENTIONS[dataset]
    jobs = [_Job(s, d, conv, images[i] if images else None, ignore_unknown, resize_to_images)
            for i, (s, d) in enumerate(pairs)]
    return _write_all(jobs, nproc, progress, overwrite, resize_to_images)


def _write_all(jobs: Sequence[_Job], nproc: int, progress: bool, overwrite: bool, resize_to_images: bool) -> Report:
    """Runs ``jobs`` writing to temporary files, renamed to the real outputs once every job succeeded."""
    outputs = [p for j in jobs for p in (j.dst, j.half_image) if p is not None]
    sources = {osp.realpath(p) for j in jobs for p in (j.src, j.image) if p is not None}
    for dst in outputs:
        if osp.realpath(dst) in sources:
            raise FileExistsError(f'refusing to write {dst}: it is one of the source files. Give another '
                                  '--out-dir.')
    existing = [d for d in outputs if osp.exists(d)]
    if existing and not overwrite:
        raise FileExistsError(f'{len(existing)} output file(s) exist already, e.g. {existing[0]}; pass '
                              '--overwrite to replace them, or --out-dir to write elsewhere')
    for folder in {osp.dirname(d) for d in outputs}:
        remove_stale_temporaries(folder)
    # Temporary names keep the extension (the encoders are picked by it) and cannot be a source.
    tmp = {d: osp.join(osp.dirname(d), f'{TMP_PREFIX}{os.getpid()}-{osp.basename(d)}') for d in outputs}
    tmp_jobs = [replace(j, dst=tmp.get(j.dst), half_image=tmp.get(j.half_image)) for j in jobs]
    try:
        report = _collect(_run(tmp_jobs, nproc, progress), jobs)
        if report.size_mismatches and not resize_to_images:
            first = report.size_mismatches[0]
            raise LabelSizeError(f'{len(report.size_mismatches)} label(s) differ in size from their image, '
                                 f'e.g. {first[0]}: label {first[1]}, image {first[2]}. Pass '
                                 '--resize-labels-to-images to resize those labels (nearest neighbour).')
        for dst in outputs:
            os.replace(tmp[dst], dst)
        report.written = outputs
        return report
    finally:
        for t in tmp.values():
            if osp.exists(t):
                os.remove(t)


def check(label_files: Sequence[str], dataset: str = 'train_ids', images: Optional[Sequence[str]] = None,
          nproc: int = 2, progress: bool = True) -> Report:
    """Reads every label (values must follow ``dataset``'s convention) and compares sizes with images."""
    if not label_files:
        raise DatasetLayoutError('no label files found')
    conv = CONVENTIONS[dataset]
    jobs = [_Job(s, None, conv, images[i] if images else None) for i, s in enumerate(label_files)]
    report = _collect(_run(jobs, nproc, progress), jobs)
    if report.size_mismatches:
        first = report.size_mismatches[0]
        raise LabelSizeError(f'{len(report.size_mismatches)} label(s) differ in size from their image, '
                             f'e.g. {first[0]}: label {first[1]}, image {first[2]}')
    return report


def _collect(results, jobs) -> Report:
    report = Report(files=len(results))
    for (hist, bad, mismatch), job in zip(results, jobs):
        report.pixels += hist
        if bad:
            report.unknown_values[job.src] = bad
        if mismatch:
            report.size_mismatches.append(mismatch)
    return report


# ----------------------------------------------------------------------------------------------------
# Finding files in the public layouts
def require_dir(path: str, what: str) -> str:
    if not osp.isdir(path):
        raise DatasetLayoutError(f'{what}: folder {path} does not exist (see docs/datasets.md for the layout)')
    return path


def list_files(folder: str, suffix: str, exclude_suffix: Optional[str] = None, prefix: str = '') -> List[str]:
    files = sorted(glob.glob(osp.join(folder, '**', prefix + '*' + suffix), recursive=True))
    # Outputs of an earlier run (e.g. *_labelTrainIds.png next to *.png) are not sources.
    return [f for f in files if not (exclude_suffix and f.endswith(exclude_suffix))
            and not osp.basename(f).startswith(TMP_PREFIX)]


def _file_key(path: str, folder: str, prefix: str, suffix: str) -> str:
    """``path`` relative to ``folder`` without the file name's ``prefix`` and ``suffix``."""
    head, name = osp.split(osp.relpath(path, folder))
    return osp.join(head, name[len(prefix):-len(suffix)])


def _key_to_name(key: str, prefix: str, suffix: str) -> str:
    head, name = osp.split(key)
    return osp.join(head, prefix + name + suffix)


def pair_files(img_dir: str, img_suffix: str, label_dir: str, label_suffix: str,
               exclude_suffix: Optional[str] = None, img_prefix: str = '', label_prefix: str = ''
               ) -> Tuple[List[str], List[str]]:
    """Images and labels matched by relative path (file names without their prefix and suffix, e.g.
    ``rgb_0001.png`` and ``ss_0001.png``); a missing partner on either side is an error."""
    labels = list_files(label_dir, label_suffix, exclude_suffix, label_prefix)
    images = list_files(img_dir, img_suffix, prefix=img_prefix)
    key_l = {_file_key(f, label_dir, label_prefix, label_suffix): f for f in labels}
    key_i = {_file_key(f, img_dir, img_prefix, img_suffix): f for f in images}
    for missing, have, kind, where, prefix, suffix in (
            (set(key_i) - set(key_l), key_i, 'label', label_dir, label_prefix, label_suffix),
            (set(key_l) - set(key_i), key_l, 'image', img_dir, img_prefix, img_suffix)):
        if missing:
            example = sorted(missing)[0]
            raise DatasetLayoutError(
                f'{len(missing)} {kind} file(s) missing in {where}, e.g. {_key_to_name(example, prefix, suffix)} '
                f'(for {have[example]})')
    keys = sorted(key_l)
    return [key_i[k] for k in keys], [key_l[k] for k in keys]


def out_path(label: str, label_dir: str, src_suffix: str, out_dir: str, out_suffix: str) -> str:
    rel = osp.relpath(label, label_dir)
    return osp.join(out_dir, rel[:-len(src_suffix)] + out_suffix)


def cityscapes_style_pairs(root: str, dataset: str, out_dir: Optional[str], src_suffix: str,
                           img_dir: str, label_dir: str) -> Tuple[List[str], List[Tuple[str, str]]]:
    """Pairs for the datasets whose outputs sit next to their sources with another suffix."""
    spec = LAYOUTS[dataset]
    img_dir = require_dir(osp.join(root, img_dir), dataset)
    label_dir = require_dir(osp.join(root, label_dir), dataset)
    images, labels = pair_files(img_dir, spec['img_suffix'], label_dir, src_suffix,
                                exclude_suffix=spec['seg_map_suffix'])
    out_dir = out_dir or label_dir
    return images, [(lab, out_path(lab, label_dir, src_suffix, out_dir, spec['seg_map_suffix'])) for lab in labels]


def mapillary_splits(root: str) -> List[Tuple[str, str, str]]:
    """``(split name, image folder, v1.2 label folder)`` for the splits present under ``root``: the v2.0
    release (``<split>/v1.2/labels``), the v1.x release (``<split>/labels``) or a single split folder."""
    candidates = [s for s in ('training', 'validation') if osp.isdir(osp.join(root, s))]
    splits = [(s, osp.join(root, s)) for s in candidates] or [('', root)]
    found = []
    for name, folder in splits:
        images = require_dir(osp.join(folder, 'images'), 'Mapillary')
        for sub in ('v1.2/labels', 'labels', 'v1.2'):
            if osp.isdir(osp.join(folder, sub)) and list_files(osp.join(folder, sub), '.png'):
                found.append((name, images, osp.join(folder, sub)))
                break
        else:
            raise DatasetLayoutError(f'Mapillary: no v1.2 label folder in {folder} (looked for v1.2/labels, '
                                     'labels, v1.2); see docs/datasets.md')
    return found


def conversion_pairs(dataset: str, root: str, out_dir: Optional[str] = None
                     ) -> Tuple[List[str], List[Tuple[str, str]]]:
    """``(images, [(source label, output)])`` of a dataset in its public layout. Outputs go next to the
    sources with mmdg's suffix (GTA5, SYNTHIA, Cityscapes), to ``<split>/labelTrainIds`` (Mapillary) or
    to ``labelTrainIds/`` named after the image (UrbanSyn), under ``out_dir`` instead of ``root`` when
    given."""
    if dataset == 'gta5':
        return cityscapes_style_pairs(root, 'gta5', out_dir, '.png', 'images', 'labels')
    if dataset == 'synthia':
        return cityscapes_style_pairs(root, 'synthia', out_dir, '.png', 'RGB', 'GT/LABELS')
    if dataset == 'cityscapes':
        splits = [s for s in ('train', 'val') if osp.isdir(osp.join(root, 'gtFine', s))]
        if not splits:
            raise DatasetLayoutError(f'Cityscapes: neither {root}/gtFine/train nor {root}/gtFine/val exists')
        images, pairs = [], []
        for split in splits:
            i, p = cityscapes_style_pairs(root, 'cityscapes', out_dir and osp.join(out_dir, 'gtFine', split),
                                          '_gtFine_labelIds.png', f'leftImg8bit/{split}', f'gtFine/{split}')
            images += i
            pairs += p
        return images, pairs
    if dataset == 'mapillary':
        images, pairs = [], []
        for split, img_dir, label_dir in mapillary_splits(root):
            i, labels = pair_files(img_dir, '.jpg', label_dir, '.png')
            dst_dir = osp.join(out_dir or root, split, 'labelTrainIds')
            images += i
            pairs += [(lab, out_path(lab, label_dir, '.png', dst_dir, '.png')) for lab in labels]
        return images, pairs
    if dataset == 'urbansyn':
        img_dir = require_dir(osp.join(root, 'rgb'), 'urbansyn')
        label_dir = require_dir(osp.join(root, 'ss'), 'urbansyn')
        images, labels = pair_files(img_dir, '.png', label_dir, '.png', img_prefix='rgb_', label_prefix='ss_')
        # Outputs are named after the images (labelTrainIds/rgb_0001.png), so mmseg pairs them by name.
        dst_dir = osp.join(out_dir or root, LAYOUTS['urbansyn']['seg_map_path'])
        return images, [(lab, out_path(img, img_dir, '.png', dst_dir, '.png')) for img, lab in zip(images, labels)]
    raise KeyError(f'no converter for {dataset!r}: one of {", ".join(CONVERTERS)} '
                   '(BDD100K and ACDC ship train ids: check them with check_dataset.py)')


#: The datasets ``conversion_pairs`` knows.
CONVERTERS = ('gta5', 'synthia', 'cityscapes', 'mapillary', 'urbansyn')


def make_mapillary_half_val(root: str, out_dir: Optional[str] = None, nproc: int = 2,
                            ignore_unknown: bool = False, resize_to_images: bool = False,
                            progress: bool = True, overwrite: bool = False) -> Report:
    """Writes Mapillary's half-resolution validation set, the one the official evaluation scores:
    ``half/validation/images/*.jpg`` (bicubic) and ``half/validation/labelTrainIds/*.png`` (nearest),
    at ``(w // 2, h // 2)``, under ``out_dir`` or ``root``. The labels are mapped from the v1.2 sources
    with the converter's checks (mapping then nearest resizing equals resizing the converted labels);
    all-or-nothing like :func:`convert`."""
    splits = {name: (img_dir, label_dir) for name, img_dir, label_dir in mapillary_splits(root)}
    if 'validation' not in splits:
        raise DatasetLayoutError(f'Mapillary: {osp.join(root, "validation")} does not exist; the '
                                 'half-resolution set is made from the validation split')
    img_dir, label_dir = splits['validation']
    images, labels = pair_files(img_dir, '.jpg', label_dir, '.png')
    if not labels:
        raise DatasetLayoutError(f'no Mapillary validation labels found in {label_dir}')
    spec, base = LAYOUTS['mapillary_half'], out_dir or root
    conv = CONVENTIONS['mapillary']
    jobs = [_Job(lab, out_path(lab, label_dir, '.png', osp.join(base, spec['seg_map_path']), '.png'), conv, img,
                 ignore_unknown, resize_to_images,
                 half_image=out_path(img, img_dir, '.jpg', osp.join(base, spec['img_path']), '.jpg'))
            for img, lab in zip(images, labels)]
    return _write_all(jobs, nproc, progress, overwrite, resize_to_images)


def check_files(dataset: str, root: str, split: Optional[str] = None, condition: Optional[str] = None
                ) -> Tuple[List[str], List[str]]:
    """Images and train-id labels that mmdg's dataset class would read."""
    spec = layout(dataset, split, condition)
    img_dir = require_dir(osp.join(root, spec['img_path']), dataset)
    label_dir = require_dir(osp.join(root, spec['seg_map_path']), dataset)
    return pair_files(img_dir, spec['img_suffix'], label_dir, spec['seg_map_suffix'])


def draw_cityscapes_subset(root: str, fraction: float, seed: int = 0) -> List[str]:
    """``ceil(n / fraction)`` Cityscapes training images (``city/city_xxxxxx_yyyyyy`` stems), drawn uniformly
    at random with ``seed``, sorted."""
    import glob
    import math
    import random
    suffix = '_leftImg8bit.png'
    img_dir = osp.join(root, 'leftImg8bit', 'train')
    if not osp.isdir(img_dir):
        raise FileNotFoundError(f'{img_dir} does not exist: give the Cityscapes root (docs/datasets.md)')
    stems = sorted(osp.relpath(p, img_dir)[:-len(suffix)] for p in glob.glob(osp.join(img_dir, '*', '*' + suffix)))
    if not stems:
        raise FileNotFoundError(f'no *{suffix} image under {img_dir}')
    return sorted(random.Random(seed).sample(stems, math.ceil(len(stems) / fraction)))


def write_subset_list(root: str, fraction: float, out: str, seed: int = 0) -> int:
    """The drawn subset as an image list at ``out``, written atomically (a full disk or a kill leaves no
    truncated list, which later runs would refuse to replace); returns its length."""
    from mmdg.utils.checkpoint import atomic_write
    stems = draw_cityscapes_subset(root, fraction, seed)
    atomic_write(out, lambda f: f.write(('\n'.join(stems) + '\n').encode()))
    return len(stems)
