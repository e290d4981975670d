"""``make demo-compare``: every tuning method (and training from scratch) from the same pre-trained demo
backbone, same data, schedule and seeds; prints and writes a markdown table and a bar chart.

    python tools/demo_compare.py [--methods sora lora ...] [--seeds 0 1 2] [--iters 200]
        [--work-dir work_dirs/demo_compare] [--verbose]

Writes ``<work-dir>/results.md``, ``results.json`` (every run, per-class IoU) and ``chart.png``; each run's
log and checkpoint are under ``<work-dir>/<method>/seed<k>/``.
"""
import argparse

from mmdg.apis.demo import DEFAULT_DATA_ROOT, METHODS
from mmdg.apis.demo_compare import COMPARE_ITERS, run_compare


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--methods', nargs='+', default=list(METHODS), choices=METHODS, type=str.lower)
    parser.add_argument('--seeds', nargs='+', type=int, default=[0])
    parser.add_argument('--iters', type=int, default=COMPARE_ITERS, help='training iterations of every run')
    parser.add_argument('--data-root', default=DEFAULT_DATA_ROOT)
    parser.add_argument('--work-dir', default='work_dirs/demo_compare')
    parser.add_argument('--pretrained', help='another checkpoint of the demo ViT (default: the committed one)')
    parser.add_argument('--verbose', action='store_true', help='the full training log on the console')
    args = parser.parse_args(argv)
    res = run_compare(args.methods, args.seeds, args.iters, args.data_root, args.work_dir, args.pretrained,
                      quiet=not args.verbose)
    print(f'\nmIoU (%) per style; {res["header"]}\n')
    print(res['table'])
    print(f'\ntable: {args.work_dir}/results.md, every run: {args.work_dir}/results.json, chart: {res["chart"]}')


if __name__ == '__main__':
    main()
