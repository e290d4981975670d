"""The start-up check: before the first iteration, the configured model and data must agree.

A decode head with 40 classes on 19-class data trains, validates and checkpoints without a word; labels
at half the image size are rescaled with the image and train on misaligned pixels; an empty target
folder makes an empty validation. :class:`DataModelCheckHook` finds these before anything runs (it is
in the default runtimes, and the tools add it to any mmdg config) and stops with
:class:`DataModelError`, naming the config key or the file. It samples a few label/image pairs per
dataset; ``tools/dataset_converters/check_dataset.py`` checks every pair. An empty dataset is named
already when it is built (mmengine itself would fail there with a numpy message naming nothing).
"""
from typing import Iterator, List, Optional, Tuple

from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper

from mmdg.registry import HOOKS


class DataModelError(ValueError):
    """The configured model and its data disagree (classes, ignore index, label size, empty domain)."""


def _leaves(dataset, name: str) -> Iterator[Tuple[str, object]]:
    """(description, dataset) for every dataset inside wrappers (concatenated domains, repeats)."""
    inner = getattr(dataset, 'datasets', None)
    if inner is not None:
        names = getattr(dataset, 'domain_names', None) or [str(i) for i in range(len(inner))]
        for n, d in zip(names, inner):
            yield from _leaves(d, f'{name} domain {n!r}' if getattr(dataset, 'domain_names', None) else name)
        return
    if hasattr(dataset, 'dataset') and not hasattr(dataset, 'data_list'):
        yield from _leaves(dataset.dataset, name)
        return
    yield name, dataset


def _where(dataset) -> str:
    """The folder a dataset lists its images from (what an empty dataset should name)."""
    prefix = getattr(dataset, 'data_prefix', {}) or {}
    folder = prefix.get('img_path') or prefix.get('img') or getattr(dataset, 'data_root', '') or ''
    ann = getattr(dataset, 'ann_file', '')
    return f'{folder}' + (f' (list {ann})' if ann else '')


def _empty_dataset_error(dataset, where: str = '') -> DataModelError:
    return DataModelError(f'{where + ": " if where else ""}the {type(dataset).__name__} dataset is empty: no image '
                          f'found under {_where(dataset)}. Check its data_root / data_prefix / img_suffix in the config')


def serialize_nonempty(dataset, serialize):
    """mmengine's ``BaseDataset._serialize_data`` (``serialize``), refusing an empty dataset by name first
    (installed by ``mmdg.patches``)."""
    if not dataset.data_list:
        raise _empty_dataset_error(dataset)
    return serialize(dataset)


def _heads(model) -> List[Tuple[str, object]]:
    """(config key, module) of the parts of a segmentor / detector whose ``num_classes`` must match the
    dataset's classes."""
    found = []
    for key in ('decode_head', 'auxiliary_head', 'bbox_head'):
        head = getattr(model, key, None)
        if head is None:
            continue
        if isinstance(head, (list, tuple)) or head.__class__.__name__ == 'ModuleList':
            found += [(f'model.{key}[{i}]', h) for i, h in enumerate(head)]
        else:
            found.append((f'model.{key}', head))
    roi = getattr(model, 'roi_head', None)
    bbox = getattr(roi, 'bbox_head', None)
    if bbox is not None:
        heads = bbox if isinstance(bbox, (list, tuple)) or bbox.__class__.__name__ == 'ModuleList' else [bbox]
        found += [(f'model.roi_head.bbox_head' + (f'[{i}]' if len(heads) > 1 else ''), h) for i, h in enumerate(heads)]
    return [(k, h) for k, h in found if isinstance(getattr(h, 'num_classes', None), int)]


def _image_size(path: str) -> Optional[Tuple[int, int]]:
    """(height, width) from the header, or None for a file that is not there or cannot be read (the
    checked loaders name those when they reach them)."""
    from PIL import Image
    try:
        with Image.open(path) as im:
            return im.size[1], im.size[0]
    except Exception:  # noqa: BLE001 - reported by the loader with its own message
        return None


def check_data_model(model, dataset, name: str, samples: int = 4) -> None:
    """Raise :class:`DataModelError` if ``model`` (a built segmentor or detector) and ``dataset`` (a
    built dataset, ``name`` the config key it comes from, e.g. ``train_dataloader``) disagree."""
    heads = _heads(model)
    for where, leaf in _leaves(dataset, name):
        if len(leaf) == 0:
            raise _empty_dataset_error(leaf, where)
        meta = getattr(leaf, 'metainfo', {}) or {}
        classes = meta.get('classes')
        if classes:
            for key, head in heads:
                if head.num_classes != len(classes):
                    raise DataModelError(
                        f'{key}.num_classes is {head.num_classes}, but the {where} dataset '
                        f'({type(leaf).__name__}) has {len(classes)} classes ({", ".join(map(str, classes[:4]))}, '
                        f'...); set {key}.num_classes={len(classes)} (or the dataset\'s metainfo classes)')
        ignore = getattr(leaf, 'ignore_index', None)
        for key, head in heads:
            own = getattr(head, 'ignore_index', None)
            if ignore is not None and own is not None and own != ignore:
                raise DataModelError(f'{key}.ignore_index is {own}, but the {where} dataset ignores label '
                                     f'{ignore}; set both to the same value (255 for the mmdg datasets)')
        _check_pipeline(leaf, where, classes, ignore)
        _check_label_sizes(leaf, where, samples)


def _check_pipeline(dataset, where: str, classes, ignore) -> None:
    """The checked label loader must accept exactly the dataset's classes and ignore index."""
    for i, t in enumerate(getattr(getattr(dataset, 'pipeline', None), 'transforms', []) or []):
        if type(t).__name__ != 'LoadAnnotationsChecked':
            continue
        if classes and t.num_classes != len(classes):
            raise DataModelError(f'{where}: pipeline[{i}] LoadAnnotationsChecked has num_classes={t.num_classes}, '
                                 f'the dataset {len(classes)} classes; set num_classes={len(classes)} there')
        if ignore is not None and t.ignore_index != ignore:
            raise DataModelError(f'{where}: pipeline[{i}] LoadAnnotationsChecked has ignore_index={t.ignore_index}, '
                                 f'the dataset {ignore}; set ignore_index={ignore} there')


def _check_label_sizes(dataset, where: str, samples: int) -> None:
    """Compare label and image sizes on ``samples`` pairs spread over the dataset (headers only)."""
    n = len(dataset)
    picks = sorted({round(i * (n - 1) / max(samples - 1, 1)) for i in range(min(samples, n))})
    for i in picks:
        info = dataset.get_data_info(i)
        img, seg = info.get('img_path'), info.get('seg_map_path')
        if not img or not seg:
            return  # detection data or a split without labels
        a, b = _image_size(img), _image_size(seg)
        if a and b and a != b:
            raise DataModelError(
                f'{where}: label {seg} is {b[1]}x{b[0]} (WxH) but its image {img} is {a[1]}x{a[0]}; labels '
                'must match their images pixel for pixel. Check the whole set with '
                'tools/dataset_converters/check_dataset.py, or convert with --resize-labels-to-images')


@HOOKS.register_module()
class DataModelCheckHook(Hook):
    """Runs :func:`check_data_model` on the datasets of a run before its first iteration: the training
    and validation sets in ``before_train``, the validation set in ``before_val`` (of a run that only
    validates), the test set in ``before_test``. ``samples`` label/image pairs per dataset are compared.
    During training, the first ``labelled_iters`` batches must hold at least one labelled pixel: a set whose
    labels are all "ignore" trains to loss 0 and accuracy 100 on nothing."""

    priority = 'VERY_HIGH'

    def __init__(self, samples: int = 4, labelled_iters: int = 10):
        self.samples = samples
        self.labelled_iters = labelled_iters
        self._val_checked = False
        self._labelled = False

    def _run(self, runner, loop, name: str) -> None:
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        dataset = getattr(getattr(loop, 'dataloader', None), 'dataset', None)
        if dataset is not None:
            check_data_model(model, dataset, name, self.samples)

    def before_train(self, runner) -> None:
        self._run(runner, runner.train_loop, 'train_dataloader')
        val = getattr(runner, '_val_loop', None)
        if val is not None and not isinstance(val, dict):
            check_data_model(runner.model.module if is_model_wrapper(runner.model) else runner.model,
                             val.dataloader.dataset, 'val_dataloader', self.samples)
            self._val_checked = True

    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        # before the checkpoint hook (this one runs first): a run on nothing stops before it saves
        if self._labelled or runner.iter >= self.labelled_iters or not isinstance(data_batch, dict):
            return
        samples = data_batch.get('data_samples') or []
        segs = [s.gt_sem_seg.data for s in samples if 'gt_sem_seg' in s]
        if not segs:
            self._labelled = True  # not segmentation data
            return
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        ignore = next((getattr(h, 'ignore_index', None) for _, h in _heads(model)), 255)
        self._labelled = any(bool((seg != ignore).any()) for seg in segs)
        last = min(self.labelled_iters, runner.max_iters) - 1
        if not self._labelled and runner.iter >= last:
            raise DataModelError(
                f'the first {last + 1} training batches hold no labelled pixel: every label is {ignore} (ignore). '
                'The loss is 0 and nothing is learnt; check the label conversion (tools/dataset_converters/'
                'check_dataset.py) and the dataset\'s ignore_index')

    def before_val(self, runner) -> None:
        if not self._val_checked:
            self._run(runner, runner.val_loop, 'val_dataloader')
            self._val_checked = True
    
    def before_test(self, runner) -> None:
        self._run(runner, runner.test_loop, 'test_dataloader')
