"""Convert a dataset's labels to the 19 Cityscapes train ids that mmdg's datasets read.

    python tools/dataset_converters/convert_labels.py gta5 data/gta5
    python tools/dataset_converters/convert_labels.py synthia data/synthia
    python tools/dataset_converters/convert_labels.py urbansyn data/urbansyn
    python tools/dataset_converters/convert_labels.py cityscapes data/cityscapes
    python tools/dataset_converters/convert_labels.py mapillary data/mapillary [--half-val]

``--half-val`` (Mapillary) also writes the half-resolution validation set the official evaluation
scores (``half/validation/{images,labelTrainIds}``); train-id labels that all exist already from an
earlier run are kept, so it can be added after the conversion.

Source files are never modified; outputs are written only once every label has converted (a run that
was killed leaves hidden ``.mmdg-tmp-*`` files, which the next run removes). See docs/datasets.md for
each layout.
"""
import argparse
import os
import os.path as osp
import sys

from mmdg.datasets.converters import (CONVERTERS, DatasetLayoutError, LabelValueError,
                                      conversion_pairs, convert, make_mapillary_half_val)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('dataset', choices=CONVERTERS)
    parser.add_argument('root', help='the dataset folder in its public layout')
    parser.add_argument('--out-dir', help='write outputs under this folder instead of the dataset root')
    parser.add_argument('--half-val', action='store_true',
                        help='Mapillary: also write the half-resolution validation set (half/validation/)')
    parser.add_argument('--nproc', type=int, default=os.cpu_count() or 1, help='worker processes (default: all cores)')
    parser.add_argument('--ignore-unknown', action='store_true',
                        help='map label values outside the dataset convention to 255 instead of stopping')
    parser.add_argument('--resize-labels-to-images', action='store_true',
                        help='resize (nearest) labels whose size differs from their image instead of stopping')
    parser.add_argument('--overwrite', action='store_true', help='replace outputs that exist already')
    parser.add_argument('--no-progress', action='store_true')
    args = parser.parse_args(argv)
    if args.half_val and args.dataset != 'mapillary':
        parser.error('--half-val is for mapillary only')
    options = dict(nproc=args.nproc, ignore_unknown=args.ignore_unknown,
                   resize_to_images=args.resize_labels_to_images, progress=not args.no_progress,
                   overwrite=args.overwrite)
    try:
        images, pairs = conversion_pairs(args.dataset, args.root, args.out_dir)
        if args.half_val and not args.overwrite and pairs and all(osp.exists(d) for _, d in pairs):
            print(f'{args.dataset}: the {len(pairs)} train-id labels exist already: kept')
        else:
            print(f'{args.dataset}: converting {len(pairs)} labels with {args.nproc} processes')
            report = convert(pairs, args.dataset, images, **options)
            print(report.summary())
            print(f'wrote {len(report.written)} files, e.g. {report.written[0]}')
        if args.half_val:
            print(f'{args.dataset}: writing the half-resolution validation set with {args.nproc} processes')
            report = make_mapillary_half_val(args.root, args.out_dir, **options)
            print(report.summary())
            print(f'wrote {len(report.written)} files (images and labels), e.g. {report.written[0]}')
    except (DatasetLayoutError, LabelValueError, OSError) as exc:  # a corrupt or unreadable file names itself
        sys.exit(f'error: {exc}')
    except KeyboardInterrupt:  # the outputs of this run were temporary files, removed on the way out
        sys.exit('interrupted (Ctrl-C): nothing was written; run the same command again to convert')


if __name__ == '__main__':
    main()
