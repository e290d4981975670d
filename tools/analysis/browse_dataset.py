"""Draw a dataset's labels over its images, as the model will see them after the pipeline: the way to check
a label converter (wrong ids show up as wrong colours, shifted or mis-sized masks as misplaced ones).

    python tools/analysis/browse_dataset.py CONFIG --out DIR [--split train|val|test] [--max 20]
        [--domain fog] [--no-pipeline] [--show [--show-interval 2]]

One PNG per sample under DIR (``<domain>_<index>_<image name>.png``): the image beside the image with its
labels drawn (class names on the segments, or boxes with class names). Uses the config's visualizer (mmseg's ``SegLocalVisualizer``, or
mmdet's ``DetLocalVisualizer`` for detection configs). ``--no-pipeline`` keeps only the loading steps
(no random crop / flip / photometric distortion) to look at whole frames. ``--split target`` browses the
config's ``target_datasets``. mmseg's own browse_dataset builds in the 'mmseg' scope and cannot find
mmdg's datasets and transforms.
"""
import argparse
import copy
import os
import os.path as osp

from mmdg.utils.atomic import save_image
from mmdg.utils.tool_config import add_cfg_options, load_scoped_config as load_config

RANDOM_STEPS = ('RandomResize', 'RandomCrop', 'RandomFlip', 'PhotoMetricDistortion', 'RandomChoiceResize',
                'RandomRotate', 'RandomCutOut', 'RandomMosaic', 'RandomChoice', 'RandomApply')


def _strip(pipeline):
    return [copy.deepcopy(t) for t in pipeline if str(t.get('type', '')).split('.')[-1] not in RANDOM_STEPS]


def dataset_configs(cfg, split, domain=None):
    """{domain name: dataset config} of the chosen split."""
    if split == 'target':
        found = dict(cfg.get('target_datasets') or {})
        if not found:
            raise SystemExit('error: the config has no target_datasets')
    else:
        loader = cfg.get(f'{split}_dataloader')
        if not loader:
            raise SystemExit(f'error: the config has no {split}_dataloader')
        ds = loader.dataset
        found = dict(ds.domains) if ds.get('type') == 'MultiDomainDataset' else {split: ds}
    if domain:
        if domain not in found:
            raise SystemExit(f'error: no domain {domain!r} in {split}; the config has {sorted(found)}')
        found = {domain: found[domain]}
    return found


def _walk_pipelines(ds, fn):
    """Apply fn to every pipeline of a dataset config (wrappers such as ConcatDataset included)."""
    if 'pipeline' in ds:
        ds['pipeline'] = fn(ds['pipeline'])
    for key in ('dataset', 'datasets'):
        inner = ds.get(key)
        for d in (inner if isinstance(inner, (list, tuple)) else [inner] if inner else []):
            _walk_pipelines(d, fn)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('config')
    p.add_argument('--out', help='folder for the pictures (needed unless --show)')
    p.add_argument('--show', action='store_true', help='show each picture in a window (as mmseg\'s browse_dataset)')
    p.add_argument('--show-interval', type=float, default=2, help='seconds each shown picture stays (0: a key)')
    p.add_argument('--split', default='train', choices=['train', 'val', 'test', 'target'])
    p.add_argument('--domain', help='only this domain of a multi-domain split')
    p.add_argument('--max', type=int, default=20, help='pictures per domain (default 20)')
    p.add_argument('--no-pipeline', action='store_true', help='drop the random augmentation steps')
    p.add_argument('--opacity', type=float, default=0.5, help='label overlay opacity')
    add_cfg_options(p)
    args = p.parse_args(argv)
    if not (args.out or args.show):
        p.error('give --out DIR, --show, or both')
    if args.show and os.name == 'posix' and not (os.environ.get('DISPLAY') or os.environ.get('WAYLAND_DISPLAY')):
        raise SystemExit('error: --show needs a display (no DISPLAY here); write the pictures with --out DIR')
    from mmdg.utils.tool_config import input_errors_as_messages
    with input_errors_as_messages():
        run(args)


def run(args):
    import mmcv
    import numpy as np
    from mmdg.registry import DATASETS, VISUALIZERS
    cfg = load_config(args.config, args.cfg_options)
    vis_cfg = copy.deepcopy(cfg.get('visualizer') or dict(type='SegLocalVisualizer'))
    # a name of its own: mmengine hands back an existing visualizer of the same name (another config's)
    vis_cfg.update(name=f'browse_dataset-{os.getpid()}-{id(args)}', vis_backends=None, save_dir=None)
    if 'Seg' in str(vis_cfg.get('type')):
        vis_cfg['alpha'] = args.opacity
    visualizer = VISUALIZERS.build(vis_cfg)
    if args.out:
        os.makedirs(args.out, exist_ok=True)
    written = 0
    for domain, ds_cfg in dataset_configs(cfg, args.split, args.domain).items():
        ds_cfg = copy.deepcopy(ds_cfg)
        if args.no_pipeline:
            _walk_pipelines(ds_cfg, _strip)
        dataset = DATASETS.build(ds_cfg)
        visualizer.dataset_meta = dataset.metainfo
        for i in range(min(args.max, len(dataset))):
            item = dataset[i]
            sample = item['data_samples']
            img = item['inputs'].permute(1, 2, 0).numpy().astype(np.uint8)
            if sample.metainfo.get('img_path') and img.shape[-1] == 3:
                img = mmcv.bgr2rgb(img)  # LoadImage gives BGR; the visualizer draws RGB
            boxes = getattr(sample, 'gt_instances', None)
            if boxes is not None and hasattr(boxes.get('bboxes', None), 'tensor'):
                boxes.bboxes = boxes.bboxes.tensor  # mmdet's visualizer draws plain tensors, not box objects
            stem = osp.splitext(osp.basename(sample.metainfo.get('img_path', f'{i}')))[0]
            visualizer.add_datasample(stem, img, sample, draw_gt=True, draw_pred=False, show=False)
            drawn = visualizer.get_image()
            if drawn.shape[:2] == img.shape[:2]:
                drawn = np.concatenate([img, drawn], axis=1)  # the bare image beside: what the labels hide
            if args.out:
                save_image(osp.join(args.out, f'{domain}_{i:04d}_{stem}.png'), drawn, rgb=True)  # atomically
            if args.show:
                mmcv.imshow(mmcv.rgb2bgr(drawn), win_name=f'{domain}: {stem}', wait_time=int(args.show_interval * 1000))
            written += 1
        print(f'{domain}: {min(args.max, len(dataset))} of {len(dataset)} images' + (f' -> {args.out}' if args.out else ''))
    if not written:
        raise SystemExit('error: the dataset is empty (check data_root and data_prefix)')


if __name__ == '__main__':
    main()
