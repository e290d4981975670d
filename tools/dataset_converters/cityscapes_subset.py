"""Draw a fraction of the Cityscapes training images as an image list for the data-efficiency configs.

    python tools/dataset_converters/cityscapes_subset.py data/cityscapes --fraction 16 [--seed 0]

writes ``data/cityscapes/splits/cityscapes_train_1of16.txt``: ceil(2975 / 16) = 186 lines such as
``aachen/aachen_000000_000019`` (what ``CityscapesDGDataset(ann_file=...)`` reads), drawn uniformly at
random with the seed, sorted. The official recipe's own 1/16 list is not published, so a number measured on
this list is comparable to the paper's only up to the choice of images; keep the list with your results.
"""
import argparse
import glob
import math
import os
import os.path as osp
import random
import sys

SUFFIX = '_leftImg8bit.png'


def draw(root: str, fraction: int, seed: int = 0):
    img_dir = osp.join(root, 'leftImg8bit', 'train')
    if not osp.isdir(img_dir):
        raise FileNotFoundError(f'{img_dir} does not exist: give the Cityscapes root (docs/datasets.md)')
    stems = sorted(osp.relpath(p, img_dir)[:-len(SUFFIX)]
                   for p in glob.glob(osp.join(img_dir, '*', '*' + SUFFIX)))
    if not stems:
        raise FileNotFoundError(f'no *{SUFFIX} image under {img_dir}')
    return sorted(random.Random(seed).sample(stems, math.ceil(len(stems) / fraction)))


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
        stems = draw(args.root, args.fraction, args.seed)
    except FileNotFoundError as exc:
        sys.exit(f'error: {exc}')
    os.makedirs(osp.dirname(osp.abspath(out)), exist_ok=True)
    with open(out, 'w') as f:
        f.write('\n'.join(stems) + '\n')
    print(f'wrote {out}: {len(stems)} images (1/{args.fraction}, seed {args.seed})')


if __name__ == '__main__':
    main()
