"""Draw a fraction of the Cityscapes training images as an image list for the data-efficiency configs.

    python tools/dataset_converters/cityscapes_subset.py data/cityscapes --fraction 16 [--seed 0]

writes ``data/cityscapes/splits/cityscapes_train_1of16.txt``: ceil(2975 / 16) = 186 lines such as
``aachen/aachen_000000_000019`` (what ``CityscapesDGDataset(ann_file=...)`` reads), drawn uniformly at
random with the seed, sorted. The official recipe's own 1/16 list is not published, so a number measured on
this list is comparable to the paper's only up to the choice of images; keep the list with your results.
"""
import argparse
import os.path as osp
import sys

from mmdg.datasets.converters import write_subset_list


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('root', help='the Cityscapes root (leftImg8bit/train/<city>/...)')
    parser.add_argument('--fraction', type=int, default=16, help='keep 1/FRACTION of the images (default 16)')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--out', help='default: <root>/splits/cityscapes_train_1of<FRACTION>.txt')
    args = parser.parse_args(argv)
    if args.fraction < 1:
        sys.exit(f'error: --fraction must be at least 1, got {args.fraction}')
    out = args.out or osp.join(args.root, 'splits', f'cityscapes_train_1of{args.fraction}.txt')
    if osp.exists(out):
        sys.exit(f'error: {out} exists already; a list that results were measured on is never replaced')
    try:
        n = write_subset_list(args.root, args.fraction, out, args.seed)
    except FileNotFoundError as exc:
        sys.exit(f'error: {exc}')
    print(f'wrote {out}: {n} images (1/{args.fraction}, seed {args.seed})')


if __name__ == '__main__':
    main()
