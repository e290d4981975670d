"""Pre-train the demo's small ViT (6 blocks, width 192, patch 16) on street scenes in random appearances,
predicting Cityscapes' seven coarse categories; the demos fine-tune the result.

    python tools/pretrain_demo_backbone.py [--out assets/demo_vit_tiny_pretrained.safetensors]
        [--steps 2400] [--batch-size 32] [--lr 1e-3] [--seed 0] [--workers 1] [--threads 2]

The defaults made the committed file (docs/demo.md gives its hash, the time it took and its held-out
score); the same command on the same machine and torch writes the same bytes. Writes the weights
(float16 safetensors, timm layout) and a JSON record with the loss curve beside them.
"""
import argparse
import os.path as osp

from mmdg.apis.pretrain_demo import DEMO_BACKBONE, command_line, pretrain
from mmdg.utils.tool_config import positive_int


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--out', default=osp.relpath(DEMO_BACKBONE))
    parser.add_argument('--steps', type=int, default=2400)
    parser.add_argument('--batch-size', type=positive_int, default=32)
    parser.add_argument('--lr', type=float, default=1e-3)
    parser.add_argument('--weight-decay', type=float, default=0.05)
    parser.add_argument('--warmup', type=int, default=100)
    parser.add_argument('--seed', type=int, default=0, help='initialisation seed (the data stream is fixed)')
    parser.add_argument('--workers', type=int, default=1, help='data-loader processes drawing the scenes')
    parser.add_argument('--threads', type=int, default=2, help='torch CPU threads (results depend on it)')
    parser.add_argument('--eval-images', type=int, default=256)
    parser.add_argument('--no-progress', action='store_true')
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    rec = pretrain(args.out, steps=args.steps, batch_size=args.batch_size, lr=args.lr,
                   weight_decay=args.weight_decay, warmup=args.warmup, seed=args.seed, workers=args.workers,
                   threads=args.threads, eval_images=args.eval_images, progress=not args.no_progress,
                   command=command_line())
    print(f'{args.out}: {rec["parameters"]:,} parameters, {rec["train_minutes"]} min of training, '
          f'held-out coarse-group mIoU {rec["held_out_coarse"]["mIoU"]} % (aAcc {rec["held_out_coarse"]["aAcc"]} %), '
          f'sha256 {rec["sha256"]}')


if __name__ == '__main__':
    main()
