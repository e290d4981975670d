"""``make demo-det``: train Faster R-CNN on the tiny DINOv2-architecture ViT on the synthetic source style
of a DWD-style (Pascal VOC per domain) dataset and report VOC mAP@0.5 (11-point) on unseen styles
(realistic palette, night, fog, rain), on CPU in a few minutes.

    python tools/demo_det.py [--method sora|full|frozen|lora|pissa|alore|hta|clora|rein|scratch] [--iters N]
        [--pretrained PATH|none]
        [--vis-backend tensorboard|wandb] [--verbose]
"""
import argparse

from mmdg.utils.console import add_console_arguments
from mmdg.apis.demo import METHODS
from mmdg.apis.demo_det import DEFAULT_DATA_ROOT, run_demo_det


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--method', default='sora', choices=METHODS, type=str.lower)
    parser.add_argument('--data-root', default=DEFAULT_DATA_ROOT)
    parser.add_argument('--work-dir', help='default: work_dirs/demo_det/<method>')
    parser.add_argument('--iters', type=int, help='training iterations (default: the config)')
    parser.add_argument('--pretrained', help='another checkpoint of the demo ViT architecture, or none '
                        'for random weights (default: the committed pre-trained demo backbone)')
    add_console_arguments(parser)
    args = parser.parse_args(argv)
    res = run_demo_det(args.method, args.data_root, args.work_dir, args.iters, args.pretrained,
                   vis_backends=args.vis_backend, quiet=not args.verbose)
    print(f'\nVOC mAP@0.5 (%, 11-point) of the {args.method} Faster R-CNN trained on the synthetic source style '
          f'({res["seconds"] / 60:.1f} min):\n')
    print(res['table'])
    print(f'\nper-class AP:\n\n{res["per_class"]}\n\nwritten to {res["work_dir"]}/results.md, results.json; '
          f'labelled pictures: {res["work_dir"]}/overlays/<style>/*.png; full log: {res["log_file"]}')


if __name__ == '__main__':
    main()
