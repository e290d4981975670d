"""Inference on images or arrays with an mmdg config and checkpoint, as mmseg's / mmdet's ``apis``:

    model = init_model('configs/dg_seg/sora/....py', 'iter_40000.pth', device='cuda:0')
    result = inference_model(model, 'frame.png')          # a SegDataSample (pred_sem_seg, seg_logits)
    results = inference_model(model, [img1, img2])        # file names or HxWx3 BGR arrays
    picture = draw_result(model, 'frame.png', result, out_file='frame_pred.png')

Full, adapter-only (the config's ``pretrained`` backbone is loaded first) and merged checkpoints load
through :func:`mmdg.utils.checkpoint.build_and_load`. Detection configs (``task = 'det'``) give
``DetDataSample`` s. DG configs test on a ``MultiDomainDataset``; the pipeline used here is the
config's ``test_pipeline``, else the first test domain's, without its annotation loading.
"""
import copy
from pathlib import Path
from typing import List, Optional, Sequence, Union

import numpy as np
import torch
from mmengine.config import Config
from mmengine.dataset import Compose

ImageType = Union[str, np.ndarray, Sequence[Union[str, np.ndarray]]]


def _config(config) -> Config:
    if isinstance(config, (str, Path)):
        return Config.fromfile(str(config))
    if isinstance(config, Config):
        return copy.deepcopy(config)
    raise TypeError(f'config must be a file name or a Config, got {type(config).__name__}')


def first_pipeline(dataset: dict) -> Optional[list]:
    """The first pipeline inside a dataset config, wrappers included (``MultiDomainDataset`` domains,
    ``ConcatDataset`` datasets, ``RepeatDataset`` dataset)."""
    if dataset.get('pipeline'):
        return dataset['pipeline']
    for child in list((dataset.get('domains') or {}).values()) + list(dataset.get('datasets') or []):
        found = first_pipeline(child)
        if found:
            return found
    return dataset.get('dataset') and first_pipeline(dataset['dataset'])


def first_dataset(dataset: dict) -> dict:
    """The first plain dataset config inside the wrappers ``first_pipeline`` walks."""
    while dataset.get('type') in ('MultiDomainDataset', 'ConcatDataset', 'RepeatDataset'):
        dataset = next(iter(dataset['domains'].values())) if 'domains' in dataset else (
            dataset['datasets'][0] if 'datasets' in dataset else dataset['dataset'])
    return dataset


def inference_pipeline(cfg: Config, arrays: bool = False) -> List[dict]:
    """The config's test pipeline without annotation loading; ``arrays``: images given as arrays."""
    pipeline = cfg.get('test_pipeline') or first_pipeline((cfg.get('test_dataloader') or cfg.val_dataloader).dataset)
    if not pipeline:
        raise ValueError('the config has no test pipeline (test_pipeline or a test dataset with a pipeline)')
    pipeline = [copy.deepcopy(t) for t in pipeline if 'LoadAnnotations' not in t['type']]
    if arrays:
        scope = 'mmdet.' if cfg.get('task') == 'det' else ''
        pipeline[0] = dict(type=f'{scope}LoadImageFromNDArray')
    return pipeline


def _dataset_meta(cfg: Config) -> dict:
    """Class names and palette of the config's test dataset class (for a checkpoint without them)."""
    from mmdg.registry import DATASETS  # mmdg's registry: its own types, mmseg's (its parent) and scoped ones
    dataset = first_dataset((cfg.get('test_dataloader') or cfg.val_dataloader).dataset)
    return dict(DATASETS.get(dataset['type']).METAINFO)


def init_model(config, checkpoint: Optional[str] = None, device: str = 'cpu', cfg_options: Optional[dict] = None):
    """The config's segmentor (mmseg's ``init_model``) or detector (mmdet's ``init_detector``) on
    ``device`` in eval mode, with ``checkpoint`` (full, adapter-only or merged) loaded; ``model.cfg`` is
    the config and ``model.dataset_meta`` the checkpoint's classes and palette (else the dataset's)."""
    from mmdg.utils.checkpoint import build_and_load
    cfg = _config(config)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    if cfg.get('task') == 'det':
        from mmdet.apis import init_detector as init
    else:
        from mmseg.apis import init_model as init

    def build():
        return init(cfg, None, device=device)
    model = build_and_load(cfg.model, checkpoint, build) if checkpoint else build()
    if not getattr(model, 'dataset_meta', None) or 'classes' not in model.dataset_meta:
        model.dataset_meta = _dataset_meta(cfg)
    model.cfg = cfg
    return model.eval()


@torch.no_grad()
def inference_model(model, img: ImageType, batch_size: int = 1):
    """Predict ``img`` (a file name or an HxWx3 BGR array, or a list of them) with a model from
    :func:`init_model`; one data sample, or a list for a list, in ``batch_size`` chunks."""
    is_batch = isinstance(img, (list, tuple))
    imgs = list(img) if is_batch else [img]
    if not imgs:
        return []
    pipelines = {}
    results = []
    for start in range(0, len(imgs), batch_size):
        data = dict(inputs=[], data_samples=[])
        for i, x in enumerate(imgs[start:start + batch_size], start):
            arrays = isinstance(x, np.ndarray)
            if arrays not in pipelines:
                pipelines[arrays] = Compose(inference_pipeline(model.cfg, arrays))
            item = pipelines[arrays](dict(img=x, img_id=i) if arrays else dict(img_path=str(x), img_id=i))
            data['inputs'].append(item['inputs'])
            data['data_samples'].append(item['data_samples'])
        results += model.test_step(data)
    return results if is_batch else results[0]


def build_visualizer(model, opacity: float = 0.5):
    """The config's visualizer (mmseg's ``SegLocalVisualizer`` or mmdet's ``DetLocalVisualizer``) with the
    model's classes and palette, writing only where it is told (``out_file``); one per model."""
    from mmengine.registry import VISUALIZERS
    visualizer = getattr(model, '_mmdg_visualizer', None)
    if visualizer is None:
        cfg = dict(model.cfg.get('visualizer') or dict(type='SegLocalVisualizer'))
        cfg.update(vis_backends=None, save_dir=None, name=f'inference_{id(model)}')
        visualizer = VISUALIZERS.build(cfg)
        visualizer.dataset_meta = model.dataset_meta
        model._mmdg_visualizer = visualizer
    visualizer.alpha = opacity
    return visualizer


def draw_result(model, img: Union[str, np.ndarray], result, out_file: Optional[str] = None, opacity: float = 0.5,
                score_thr: float = 0.3, with_labels: bool = True, visualizer=None) -> np.ndarray:
    """The prediction drawn on ``img`` with class names (segments) or labelled boxes; written to
    ``out_file`` when given. Returns the picture (RGB)."""
    import mmcv
    visualizer = visualizer or build_visualizer(model, opacity)
    image = mmcv.imread(img, channel_order='rgb') if isinstance(img, str) else mmcv.bgr2rgb(img)
    extra = dict(pred_score_thr=score_thr) if 'pred_instances' in result else dict(with_labels=with_labels)
    visualizer.add_datasample('result', image, data_sample=result, draw_gt=False, **extra)
    drawn = visualizer.get_image()
    if out_file:
        from mmdg.utils.atomic import save_image
        save_image(out_file, drawn, rgb=True)  # atomically: a kill never leaves half a picture
    return drawn
