"""Check a dataset folder the way mmdg's dataset class will read it: every image has its train-id
label, every label has an image of the same size, and every value is a train id (0-18) or 255.

    python tools/dataset_converters/check_dataset.py cityscapes data/cityscapes --split val
    python tools/dataset_converters/check_dataset.py bdd100k data/bdd100k --split val
    python tools/dataset_converters/check_dataset.py acdc data/acdc --split val --condition night
    python tools/dataset_converters/check_dataset.py gta5 data/gta5
    python tools/dataset_converters/check_dataset.py urbansyn data/urbansyn
    python tools/dataset_converters/check_dataset.py mapillary data/mapillary --split validation
    python tools/dataset_converters/check_dataset.py mapillary_half data/mapillary   # the half-resolution val set
"""
import argparse
import os
import sys

from mmdg.datasets.converters import LAYOUTS, DatasetLayoutError, LabelValueError, check, check_files


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('dataset', choices=sorted(LAYOUTS))
    parser.add_argument('root')
    parser.add_argument('--split', help='train / val (Cityscapes, BDD100K, ACDC), training / validation (Mapillary)')
    parser.add_argument('--condition', choices=['fog', 'night', 'rain', 'snow'], help='ACDC condition')
    parser.add_argument('--nproc', type=int, default=os.cpu_count() or 1)
    parser.add_argument('--no-progress', action='store_true')
    args = parser.parse_args(argv)
    try:
        images, labels = check_files(args.dataset, args.root, args.split, args.condition)
        report = check(labels, 'train_ids', images, nproc=args.nproc, progress=not args.no_progress)
    except (DatasetLayoutError, LabelValueError, ValueError, OSError) as exc:  # OSError: a corrupt file
        sys.exit(f'error: {exc}')
    print(report.summary())
    print(f'OK: {len(images)} image/label pairs')


if __name__ == '__main__':
    main()
