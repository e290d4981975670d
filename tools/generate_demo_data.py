"""Write the procedural demo dataset (Cityscapes layout, 19 train ids, several domains), or with ``--det`` the
detection demo's (Diverse-Weather VOC layout, one folder per style), as ``make demo`` / ``make demo-det`` do.

    python tools/generate_demo_data.py [--out data/demo] [--train 200] [--val 50]
    python tools/generate_demo_data.py --det [--out data/demo_det]
"""
import argparse

from mmdg.datasets.synthetic import DOMAINS, write_cityscapes_layout


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--det', action='store_true', help="the detection demo's data (default --out data/demo_det)")
    parser.add_argument('--out', help='default: data/demo, with --det data/demo_det')
    parser.add_argument('--train', type=int, default=200, help='training images per domain')
    parser.add_argument('--val', type=int, default=50, help='validation images per domain')
    parser.add_argument('--size', type=int, nargs=2, default=(128, 256), metavar=('H', 'W'))
    parser.add_argument('--domains', nargs='+', default=list(DOMAINS), choices=DOMAINS)
    parser.add_argument('--workers', type=int, default=0, help='processes (default: all cores)')
    args = parser.parse_args(argv)
    if args.det:
        from mmdg.apis.demo_det import DEFAULT_DATA_ROOT, DIFFICULT_BELOW
        from mmdg.datasets.voc_writer import write_synthetic_voc
        out = args.out or DEFAULT_DATA_ROOT
        folders = write_synthetic_voc(out, {d: d for d in args.domains}, dict(train=args.train, test=args.val),
                                      tuple(args.size), difficult_below=DIFFICULT_BELOW)
        print(f'detection demo data in {out}: domain folders {sorted(folders)}, splits train={args.train} '
              f'test={args.val}')
        return
    out = args.out or 'data/demo'
    meta = write_cityscapes_layout(out, args.domains, dict(train=args.train, val=args.val),
                                   tuple(args.size), workers=args.workers)
    print(f'demo data in {out}: domains {meta["domains"]}, splits {meta["splits"]}')


if __name__ == '__main__':
    main()
