"""Evaluate one checkpoint on several target domains: per-domain mIoU, per-class IoU, overlays; for a
detection config (``task = 'det'``), per-domain VOC mAP@0.5 (11-point) and per-class AP.

    python tools/cross_domain_eval.py CONFIG CHECKPOINT [--targets realistic night ...] [--out-dir DIR]
        [--slide --crop 512 --stride 341] [--overlays 4] [--batch-size 4]

Targets are the names of the config's ``target_datasets`` dict (default: all of them). Writes
``results.md`` (markdown tables), ``results.csv`` and ``results.json`` to the output folder. Works with
full checkpoints, adapter-only ones (the config's ``pretrained`` backbone is rebuilt first) and merged
ones from ``tools/merge_adapters.py`` (evaluated on the config without adapters).
"""
import argparse
import csv
import json
import os
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))
from mmdg.utils.tool_config import input_errors_as_messages  # noqa: E402


def per_class_table(results):
    names = list(results)
    classes = list(next(iter(results.values()))['per_class'])
    rows = ['| class | ' + ' | '.join(names) + ' |', '|---|' + '---:|' * len(names)]
    for c in classes:
        cells = [results[n]['per_class'][c] for n in names]
        rows.append(f'| {c} | ' + ' | '.join('-' if v != v else f'{v:.2f}' for v in cells) + ' |')
    return '\n'.join(rows)


def eval_detector(cfg, args, targets, out_dir):
    """The detection branch: same command line, VOC mAP@0.5 per domain (no sliding window, no overlays)."""
    if args.slide:
        raise SystemExit('--slide is for segmentation configs; this is a detection config')
    from mmdet.apis import init_detector
    from mmdg.evaluation import evaluate_det_domains, map_table, per_class_ap_table
    model = build_checked(cfg, args, init_detector)
    results = evaluate_det_domains(model, targets, batch_size=args.batch_size)
    table = map_table(results)
    write_results(out_dir, args, results, 'mAP', 'mAP50',
                  f'{table}\n\n## Per-class AP@0.5\n\n{per_class_ap_table(results)}\n')
    print(table)
    print(f'\nwritten to {out_dir}: results.md, results.csv, results.json')


def write_results(out_dir, args, results, key, csv_name, markdown):
    """``results.md`` (``markdown``), ``results.json`` and ``results.csv`` (domain, ``results[d][key]``,
    images, per-class values) in ``out_dir``."""
    os.makedirs(out_dir, exist_ok=True)
    with open(osp.join(out_dir, 'results.md'), 'w') as f:
        f.write(markdown)
    with open(osp.join(out_dir, 'results.json'), 'w') as f:
        json.dump(dict(config=args.config, checkpoint=args.checkpoint, results=results), f, indent=1)
    with open(osp.join(out_dir, 'results.csv'), 'w', newline='') as f:
        classes = list(next(iter(results.values()))['per_class'])
        writer = csv.writer(f)
        writer.writerow(['domain', csv_name, 'images', *classes])
        for name, r in results.items():
            writer.writerow([name, f'{r[key]:.4f}', r['num_images'], *(f'{r["per_class"][c]:.4f}' for c in classes)])


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('config')
    p.add_argument('checkpoint')
    p.add_argument('--targets', nargs='+', help="names from the config's target_datasets (default: all)")
    p.add_argument('--out-dir', help='default: <checkpoint folder>/cross_domain')
    p.add_argument('--slide', action='store_true', help='sliding-window inference')
    p.add_argument('--crop', type=int, nargs='+', default=[512], help='sliding window size (H [W])')
    p.add_argument('--stride', type=int, nargs='+', default=[341], help='sliding window stride (H [W])')
    p.add_argument('--overlays', type=int, default=2, help='prediction overlays (PNG) per target')
    p.add_argument('--batch-size', type=int, default=1)
    p.add_argument('--device', default='cpu')
    args = p.parse_args(argv)

    for path in (args.config, args.checkpoint):
        if not osp.isfile(path):
            raise SystemExit(f'{path} does not exist')
    with input_errors_as_messages():
        evaluate(args)


def build_checked(cfg, args, init):
    """mmseg's ``init_model`` / mmdet's ``init_detector`` without weights, then the checkpoint loaded
    through :func:`mmdg.utils.checkpoint.build_and_load` (full, adapter-only or merged; a checkpoint
    that does not fit is an error)."""
    from mmdg.utils.checkpoint import build_and_load
    return build_and_load(cfg.model, args.checkpoint, lambda: init(cfg, None, device=args.device)).eval()


def evaluate(args):
    from mmengine.config import Config
    from mmseg.apis import init_model
    from mmdg.evaluation import domain_table, evaluate_domains

    cfg = Config.fromfile(args.config)
    available = dict(cfg.get('target_datasets', {}))
    if not available:
        raise SystemExit(f'{args.config} defines no target_datasets')
    targets = args.targets or list(available)
    unknown = [t for t in targets if t not in available]
    if unknown:
        raise SystemExit(f'unknown target(s) {unknown}; {args.config} defines {sorted(available)}')
    out_dir = args.out_dir or osp.join(osp.dirname(osp.abspath(args.checkpoint)), 'cross_domain')
    if cfg.get('task') == 'det':
        return eval_detector(cfg, args, {t: available[t] for t in targets}, out_dir)
    if args.slide:
        two = lambda v: tuple(v) if len(v) == 2 else (v[0], v[0])  # noqa: E731
        cfg.model.test_cfg = dict(mode='slide', crop_size=two(args.crop), stride=two(args.stride))
    model = build_checked(cfg, args, init_model)
    os.makedirs(out_dir, exist_ok=True)
    results = evaluate_domains(model, {t: available[t] for t in targets}, batch_size=args.batch_size,
                               overlay_dir=osp.join(out_dir, 'overlays') if args.overlays else None,
                               num_overlays=args.overlays)
    table = domain_table(results)
    write_results(out_dir, args, results, 'mIoU', 'mIoU', f'{table}\n\n## Per-class IoU\n\n{per_class_table(results)}\n')
    print(table)
    print(f'\nwritten to {out_dir}: results.md, results.csv, results.json' +
          (', overlays/' if args.overlays else ''))


if __name__ == '__main__':
    main()
