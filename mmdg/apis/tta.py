"""Test-time augmentation: multi-scale + flip, mmseg's ``SegTTAModel`` / mmdet's ``DetTTAModel``."""
import copy
from typing import List, Sequence

from mmengine.config import Config

#: The official SoRA / SoMA recipes' image ratios (mmseg's Cityscapes TTA), each with and without flip.
SEG_TTA_RATIOS = (0.5, 0.75, 1.0, 1.25, 1.5, 1.75)
#: Detection: flip at the test scale (the DG detection recipes define no multi-scale TTA).
DET_TTA_RATIOS = (1.0,)


def tta_pipeline(pipeline: Sequence[dict], ratios: Sequence[float], flip: bool = True) -> List[dict]:
    """The test ``pipeline`` with its ``Resize`` replaced by mmcv's ``TestTimeAug`` over ``ratios`` x
    (no flip, flip). Ratios scale the test scale (the official configs' ``scale_factor`` on the
    original image, for test scales that are the datasets' own sizes); transforms after the resize
    (annotations, packing) run on every view, and packing keeps the flip fields the TTA models read."""
    pipeline = copy.deepcopy(list(pipeline))
    idx = [i for i, t in enumerate(pipeline) if t['type'].split('.')[-1] == 'Resize']
    if not idx:
        raise ValueError(f'--tta: the test pipeline has no Resize to vary: {[t["type"] for t in pipeline]}')
    i = idx[0]
    resize, scope = pipeline[i], pipeline[i]['type'][:-len('Resize')]
    views = []
    for r in ratios:
        view = copy.deepcopy(resize)
        if view.get('scale') is not None:
            w, h = (view['scale'], view['scale']) if isinstance(view['scale'], int) else view['scale']
            view['scale'] = (int(w * r), int(h * r))
        else:
            view['scale_factor'] = view.get('scale_factor', 1.0) * r
        views.append(view)
    flips = [dict(type=f'{scope}RandomFlip', prob=p, direction='horizontal') for p in ((0., 1.) if flip else (0.,))]
    rest = pipeline[i + 1:]
    for t in rest:
        if t['type'].split('.')[-1].startswith('Pack') and t.get('meta_keys') is not None:
            t['meta_keys'] = tuple(dict.fromkeys([*t['meta_keys'], 'flip', 'flip_direction']))
    return pipeline[:i] + [dict(type='TestTimeAug', transforms=[views, flips, *([t] for t in rest)])]


def _set_pipelines(dataset: dict, make) -> None:
    if dataset.get('type') == 'MultiDomainDataset':
        for d in dataset['domains'].values():
            _set_pipelines(d, make)
    elif 'datasets' in dataset:
        for d in dataset['datasets']:
            _set_pipelines(d, make)
    else:
        dataset['pipeline'] = make(dataset['pipeline'])


def apply_tta(cfg: Config, ratios: Sequence[float] = None, flip: bool = True) -> Config:
    """Turn ``cfg`` into its TTA version for ``Runner.test()``: the config's own ``tta_model`` /
    ``tta_pipeline`` when it has them (the pipeline then replaces every test dataset's), else the
    official multi-scale + flip TTA derived from each test dataset's own pipeline (the domains of a
    DG config resize to different scales)."""
    det = cfg.get('task') == 'det'
    model = cfg.get('tta_model') or (dict(type='DetTTAModel', _scope_='mmdet', tta_cfg=dict(
        nms=dict(type='nms', iou_threshold=0.5), max_per_img=100)) if det else dict(type='SegTTAModel'))
    if cfg.get('tta_pipeline'):
        own = cfg.tta_pipeline
        _set_pipelines(cfg.test_dataloader.dataset, lambda _: copy.deepcopy(own))
    else:
        ratios = ratios or (DET_TTA_RATIOS if det else SEG_TTA_RATIOS)
        _set_pipelines(cfg.test_dataloader.dataset, lambda p: tta_pipeline(p, ratios, flip))
    cfg.model = dict(model, module=cfg.model)
    return cfg


def inner_model_cfg(cfg: Config):
    """The segmentor's / detector's config inside a TTA model's (or the model config itself)."""
    return cfg.model.module if 'module' in cfg.model else cfg.model
