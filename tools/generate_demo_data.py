"""Write the procedural demo dataset (Cityscapes layout, 19 train ids, several domains).

    python tools/generate_demo_data.py [--out data/demo] [--train 200] [--val 50]
"""
import argparse

from mmdg.datasets.synthetic import DOMAINS, write_cityscapes_layout


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--out', default='data/demo')
    parser.add_argument('--train', type=int, default=200, help='training images per domain')
    parser.add_argument('--val', type=int, default=50, help='validation images per domain')
    parser.add_argument('--size', type=int, nargs=2, default=(128, 256), metavar=('H', 'W'))
    parser.add_argument('--domains', nargs='+', default=list(DOMAINS), choices=DOMAINS)
    parser.add_argument('--workers', type=int, default=0, help='processes (default: all cores)')
    args = parser.parse_args(argv)
    meta = write_cityscapes_layout(args.out, args.domains, dict(train=args.train, val=args.val),
                                   tuple(args.size), workers=args.workers)
    print(f'demo data in {args.out}: domains {meta["domains"]}, splits {meta["splits"]}')


if __name__ == '__main__':
    main()
