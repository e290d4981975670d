"""Write Cityscapes (or Foggy Cityscapes) boxes from the gtFine instance ids as a DWD-style VOC dataset.

    python tools/dataset_converters/cityscapes_to_dwd.py CITYSCAPES_ROOT OUT_DIR [--split val]
        [--label-set dwd|cityscapes8] [--images leftImg8bit --image-suffix _leftImg8bit.png] [--min-pixels 1]

Reads ``CITYSCAPES_ROOT/gtFine/<split>/<city>/*_gtFine_instanceIds.png`` and the matching images, writes
``OUT_DIR/VOC2007/{JPEGImages,Annotations,ImageSets/Main/<split>.txt}``. ``--label-set dwd`` gives the 7
Diverse Weather classes (motorcycle -> motor, bicycle -> bike, no train), ``cityscapes8`` the 8 Cityscapes
detection classes. Foggy Cityscapes: ``--images leftImg8bit_foggy --image-suffix
_leftImg8bit_foggy_beta_0.02.png`` (same gtFine). The source is only read.
"""
import argparse

from mmdg.datasets.voc_writer import LABEL_SETS, cityscapes_to_voc


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('cityscapes_root')
    p.add_argument('out_dir', help='the domain folder, e.g. data/cityscapes_det/foggy_cityscapes')
    p.add_argument('--split', default='val')
    p.add_argument('--label-set', default='dwd', choices=sorted(LABEL_SETS))
    p.add_argument('--images', default='leftImg8bit', help='image folder under the root')
    p.add_argument('--image-suffix', default='_leftImg8bit.png')
    p.add_argument('--min-pixels', type=int, default=1, help='instances with fewer visible pixels get no box')
    args = p.parse_args(argv)
    try:
        voc_dir, n_img, n_box = cityscapes_to_voc(args.cityscapes_root, args.out_dir, args.split, args.label_set,
                                                  args.images, args.image_suffix, args.min_pixels)
    except (OSError, ValueError) as exc:
        raise SystemExit(f'error: {exc}')
    print(f'{n_img} images, {n_box} boxes -> {voc_dir} (ImageSets/Main/{args.split}.txt)')


if __name__ == '__main__':
    main()
