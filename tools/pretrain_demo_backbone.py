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
    # no defaults here: an option not given keeps mmdg.apis.pretrain_demo.pretrain's, the settings that made
    # the committed file (one place for them)
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
                                     argument_default=argparse.SUPPRESS)
    parser.add_argument('--out', default=osp.relpath(DEMO_BACKBONE))
    parser.add_argument('--steps', type=int)
    parser.add_argument('--batch-size', type=positive_int)
    parser.add_argument('--lr', type=float)
    parser.add_argument('--weight-decay', type=float)
    parser.add_argument('--warmup', type=int)
    parser.add_argument('--seed', type=int, help='initialisation seed (the data stream is fixed)')
    parser.add_argument('--workers', type=int, help='data-loader processes drawing the scenes')
    parser.add_argument('--threads', type=int, help='torch CPU threads (results depend on it)')
    parser.add_argument('--eval-images', type=int)
    parser.add_argument('--no-progress', dest='progress', action='store_false')
    return parser


def main(argv=None):
    args = vars(build_parser().parse_args(argv))
    out = args.pop('out')
    rec = pretrain(out, command=command_line(), **args)
    print(f'{out}: {rec["parameters"]:,} parameters, {rec["train_minutes"]} min of training, '
          f'held-out coarse-group mIoU {rec["held_out_coarse"]["mIoU"]} % (aAcc {rec["held_out_coarse"]["aAcc"]} %), '
          f'sha256 {rec["sha256"]}')


if __name__ == '__main__':
    main()
