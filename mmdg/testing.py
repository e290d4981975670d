"""Recipes at toy size, for tests and the CPU benchmarks (as ``mmdet.testing`` serves mmdet's tests).

A recipe config keeps its structure (backbone family and method, frozen prefix, adapter block range, head or
detector type, datasets, pipelines, schedule phases, hooks) while the sizes shrink: a 4-block ViT of width 64,
a narrow Mask2Former or DETR, 64 px crops. The frozen prefix and the adapter range scale as 8/24 -> 1/4."""
from __future__ import annotations

import copy
from typing import Callable, Dict, Optional

#: Segmentation dataset types -> the name of their generated root (``toy_recipe(roots=...)``).
SEG_SOURCES = dict(GTA5Dataset='gta5', SYNTHIADataset='synthia', UrbanSynDataset='urbansyn',
                   CityscapesDGDataset='cityscapes', BDD100KDGDataset='bdd100k', MapillaryCS19Dataset='mapillary',
                   ACDCDataset='acdc')
TOY_VIT = dict(embed_dim=64, depth=4, num_heads=2)
TOY_CROP = (64, 64)


def walk(node, fn: Callable[[dict], None]) -> None:
    """``fn`` on every dict inside a config node (datasets in wrappers and lists, pipeline steps)."""
    if isinstance(node, dict):
        fn(node)
        for v in node.values():
            walk(v, fn)
    elif isinstance(node, (list, tuple)):
        for v in node:
            walk(v, fn)


def _toy_backbone(bb, out_indices) -> None:
    bb.update(img_size=TOY_CROP[0], out_indices=out_indices, pretrained=None,
              frozen_blocks=min(bb.get('frozen_blocks', 0), 1), model_kwargs=dict(TOY_VIT))
    if bb.get('adapter'):  # the block range scaled like the frozen prefix (all blocks stay all blocks)
        bb.adapter.blocks = (1, 4) if bb.adapter.get('blocks') else None


def toy_seg_model(cfg) -> None:
    """A segmentation recipe's model at toy size, in place: every block's features, Mask2Former at width 32."""
    bb = cfg.model.backbone
    _toy_backbone(bb, (0, 1, 2, 3))
    head = cfg.model.decode_head
    head.update(in_channels=[TOY_VIT['embed_dim']] * 4, feat_channels=32, out_channels=32, num_queries=8)
    if bb.get('adapter', {}).get('type') == 'Rein':  # its tokens are the head's queries
        bb.adapter.update(token_length=head.num_queries, query_dim=head.feat_channels)
    pd = head.pixel_decoder
    pd.encoder.num_layers = 1
    pd.encoder.layer_cfg.self_attn_cfg.update(embed_dims=32, num_heads=2)
    pd.encoder.layer_cfg.ffn_cfg.update(embed_dims=32, feedforward_channels=64)
    pd.positional_encoding.num_feats = 16
    head.positional_encoding.num_feats = 16
    td = head.transformer_decoder
    td.num_layers = 3
    td.layer_cfg.self_attn_cfg.update(embed_dims=32, num_heads=2)
    td.layer_cfg.cross_attn_cfg.update(embed_dims=32, num_heads=2)
    td.layer_cfg.ffn_cfg.update(embed_dims=32, feedforward_channels=64)
    head.train_cfg.num_points = 256
    cfg.model.data_preprocessor.size = TOY_CROP
    cfg.model.test_cfg.update(crop_size=TOY_CROP, stride=(43, 43))


def toy_det_model(cfg) -> None:
    """A detection recipe's model at toy size, in place: the last blocks' features as in the recipe, few
    queries and layers (DINO / Co-DINO keep embed_dims 256: mmdet's DINO decoder hard-codes 128 position
    features), narrow Faster R-CNN heads."""
    model = cfg.model
    n_out = len(model.backbone.out_indices)
    _toy_backbone(model.backbone, tuple(range(4 - n_out, 4)))
    width = [TOY_VIT['embed_dim']] * n_out
    if model.type in ('DINO', 'CoDINO'):
        model.update(num_queries=10)
        model.neck.in_channels = width
        model.encoder.num_layers = 1
        model.encoder.layer_cfg.ffn_cfg.feedforward_channels = 64
        model.decoder.num_layers = 2
        model.decoder.layer_cfg.ffn_cfg.feedforward_channels = 64
        model.dn_cfg.group_cfg.num_dn_queries = 10
        model.test_cfg.max_per_img = 10
        if model.type == 'CoDINO':  # the auxiliary heads: fewer proposals and samples, narrower layers
            model.rpn_head.train_cfg.rpn_proposal.update(nms_pre=200, max_per_img=50)
            model.rpn_head.train_cfg.sampler.num = 64
            model.roi_head[0].train_cfg.sampler.num = 32
            model.roi_head[0].bbox_head.fc_out_channels = 64
            model.aux_bbox_head[0].feat_channels = 64
    else:  # Faster R-CNN
        model.neck.update(in_channels=width, out_channels=32)
        model.rpn_head.update(in_channels=32, feat_channels=32)
        model.roi_head.bbox_roi_extractor.out_channels = 32
        model.roi_head.bbox_head.update(in_channels=32, fc_out_channels=64)
        model.train_cfg.rpn_proposal.update(nms_pre=200, max_per_img=50)
        model.train_cfg.rcnn.sampler.num = 32
        model.test_cfg.rpn.update(nms_pre=200, max_per_img=50)


def toy_model(cfg) -> None:
    """The recipe's model at toy size, in place (segmentation or detection by ``cfg.task``)."""
    (toy_det_model if cfg.get('task') == 'det' else toy_seg_model)(cfg)


def _toy_seg_data(d: dict, roots: Dict[str, str]) -> None:
    if d.get('type') in SEG_SOURCES:
        d['data_root'] = roots.get(SEG_SOURCES[d['type']], d.get('data_root'))
    if d.get('type') in ('RandomResize', 'Resize'):
        d['scale'] = (96, 64)
    if d.get('type') == 'RandomChoiceResize':
        d.update(scales=[64, 80], max_size=160)
    if d.get('type') == 'RandomCrop':
        d['crop_size'] = TOY_CROP


def _toy_det_data(d: dict, roots: Dict[str, str]) -> None:
    if d.get('type') in roots:
        d['data_root'] = roots[d['type']]
    pipeline = d.get('pipeline') or []
    train = any(t.get('type') == 'mmdet.RandomCrop' for t in pipeline)
    for t in pipeline:
        if t.get('type') in ('mmdet.RandomResize', 'mmdet.Resize'):
            t['scale'] = (128, 64)
        if t.get('type') == 'mmdet.RandomCrop':
            t['crop_size'] = TOY_CROP
        if t.get('type') == 'mmdet.Pad':  # (w, h): the training crop; the test images' resized size
            t['size'] = TOY_CROP if train else (128, 64)


def toy_data(cfg, roots: Optional[Dict[str, str]] = None, loaders: bool = True) -> None:
    """Pipelines at toy size and datasets read from ``roots``, in place. Segmentation roots are named by
    dataset (``SEG_SOURCES``: ``{'gta5': ...}``), detection roots by dataset type
    (``{'DiverseWeatherDataset': ...}``). ``loaders``: small batches and no worker processes as well (the
    benchmarks keep the recipe's batch)."""
    det = cfg.get('task') == 'det'
    fix = lambda d: (_toy_det_data if det else _toy_seg_data)(d, roots or {})  # noqa: E731
    if det:
        walk(cfg.get('target_datasets', {}), fix)  # the datasets of tools/cross_domain_eval.py
    for key in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        walk(cfg[key], fix)
        if not loaders:
            continue
        test_batch = 4 if det else 2
        cfg[key].update(batch_size=2 if key == 'train_dataloader' else test_batch, num_workers=0,
                        persistent_workers=False)
    if det:
        cfg.train_dataloader.dataset.filter_cfg.min_size = 0


def toy_recipe(cfg, roots: Optional[Dict[str, str]] = None, work_dir: Optional[str] = None, iters: int = 2):
    """A copy of ``cfg`` at toy size (model and data) that trains ``iters`` iterations into ``work_dir``
    with the same schedule phases (warm-up, then decay), validates only when asked, logs every iteration."""
    cfg = copy.deepcopy(cfg)
    toy_model(cfg)
    toy_data(cfg, roots)
    det = cfg.get('task') == 'det'
    cfg.train_cfg.update(max_iters=iters, val_interval=100)
    if det:
        cfg.train_cfg.val_begin = 100  # validate once, from the test itself
    for s in cfg.param_scheduler:  # the warm-up keeps its first iteration, the rest follows the decay
        s.begin, s.end = (0, 1) if s.type == 'LinearLR' else (min(s.get('begin', 0), 1), iters)
        if 'milestones' in s:
            s.milestones = [1]
    cfg.default_hooks.checkpoint.update(interval=100)
    cfg.default_hooks.logger.interval = 1
    if det:
        cfg.val_evaluator.nproc = 1
    cfg.work_dir = work_dir
    cfg.load_from = None  # the data-efficiency configs start from a trained model: not here
    for h in cfg.get('custom_hooks', []):
        if h.type == 'EMAHook':
            h.begin_iter = 1  # EMA starts within the toy run, as it does at 12k / 16k / 20k of 40k
    return cfg
