"""``make demo``: adapt the pre-trained demo ViT (DINOv2 architecture, 6 blocks; made by
tools/pretrain_demo_backbone.py and committed) with SoRA on the synthetic source style and evaluate it on
unseen styles (realistic palette, night, fog, rain), on CPU in a few minutes.

    python tools/demo.py [--method sora|full|frozen|lora|pissa|alore|hta|clora|rein|scratch]
        [--pretrained PATH|none] [--seed N] [--vis-backend tensorboard|wandb] [--verbose]

The console shows the training progress and the table; the config, the environment and the per-parameter
lines are in the log file of the work dir.
"""
import argparse

from mmdg.utils.console import add_console_arguments
from mmdg.apis.demo import DEFAULT_DATA_ROOT, METHODS, run_demo


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--method', default='sora', choices=METHODS, type=str.lower)
    parser.add_argument('--data-root', default=DEFAULT_DATA_ROOT)
    parser.add_argument('--work-dir', help='default: work_dirs/demo/<method>')
    parser.add_argument('--iters', type=int, help='training iterations (default: the config, 500)')
    parser.add_argument('--pretrained', help='another checkpoint of the demo ViT architecture, or none for random '
                        'weights (default: the committed pre-trained demo backbone)')
    parser.add_argument('--seed', type=int, help='default: the config, 0')
    add_console_arguments(parser)
    args = parser.parse_args(argv)
    res = run_demo(args.method, args.data_root, args.work_dir, args.iters, args.pretrained,
                   vis_backends=args.vis_backend, quiet=not args.verbose, seed=args.seed)
    print(f'\naAcc, mIoU, mAcc (%) of the {args.method} model trained on the synthetic source style '
          f'({res["parameters"]["backbone"]:,} trainable backbone parameters, {res["seconds"] / 60:.1f} min):\n')
    print(res['table'])
    print(f'\nper-class IoU and Acc: {res["work_dir"]}/results.json; labelled pictures: '
          f'{res["work_dir"]}/overlays/<style>/*.png; full log: {res["log_file"]}')


if __name__ == '__main__':
    main()
