"""Time SoRA's start-up SVDs on this machine: one full (thin) SVD per adapted matrix, as SoRA / PiSSA run them.

    python tools/analysis/svd_time.py                         # DINOv3-7B's shapes (4096-wide)
    python tools/analysis/svd_time.py --dim 1024 --hidden 4096 --mlp mlp --blocks 16   # DINOv2-L's recipe

Prints the seconds per matrix shape, the three q / k / v slices of one block batched into one call against one
by one, and the estimated start-up of a model with ``--blocks`` adapted blocks.
"""
import argparse
import time

import torch


def time_svd(shape, repeats: int = 1) -> float:
    w = torch.randn(*shape)
    torch.linalg.svd(w[..., :64, :64], full_matrices=False)  # warm-up of the LAPACK path
    start = time.perf_counter()
    for _ in range(repeats):
        torch.linalg.svd(w, full_matrices=False)
    return (time.perf_counter() - start) / repeats


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--dim', type=int, default=4096, help='model width')
    parser.add_argument('--hidden', type=int, default=8192, help='feed-forward width')
    parser.add_argument('--mlp', choices=('swiglu', 'mlp'), default='swiglu')
    parser.add_argument('--blocks', type=int, default=27, help='adapted blocks (the DINOv3-7B SoRA config: 13-39)')
    args = parser.parse_args(argv)
    torch.manual_seed(0)
    d, h = args.dim, args.hidden
    square, up, down = time_svd((d, d)), time_svd((h, d)), time_svd((d, h))
    for shape, t in (((d, d), square), ((h, d), up), ((d, h), down)):
        print(f'{shape[0]}x{shape[1]}: {t:.2f} s')
    batched = time_svd((3, d, d))
    print(f'q, k, v in one batched call: {batched:.2f} s (one by one: {3 * square:.2f} s)')
    ups = 2 if args.mlp == 'swiglu' else 1  # fc1_g and fc1_x, or fc1
    block = 4 * square + ups * up + down  # q, k, v, proj, the up projection(s), fc2
    print(f'one block: {block:.1f} s; {args.blocks} adapted blocks: {args.blocks * block / 60:.1f} min '
          f'({torch.get_num_threads()} threads)')
    return dict(square=square, up=up, down=down, batched=batched, block=block)


if __name__ == '__main__':
    main()
