"""Estimate the training memory of a config: the exact static part (weights, EMA copy, gradients,
AdamW moments) plus what autograd keeps for the backward pass, measured on real-size training steps
at batch 1 and 2 (random weights, images and labels): the difference is the per-image activation cost,
the rest is fixed (e.g. the bf16 weight copies autocast keeps), and both are scaled to ``--batch``.

    python tools/memory_estimate.py CONFIG [CONFIG ...] [--batch 4] [--grad-checkpointing] [--bf16]

Activations are counted with ``torch.autograd.graph.saved_tensors_hooks`` (unique storages), so the
figure is device-independent; a GPU adds its kernels' workspaces and allocator slack on top, and only a
GPU run (mmengine logs ``memory``) gives the true peak. Runs on CPU in tens of seconds per config.
"""
import argparse
import os.path as osp

from mmdg.apis.memory import GIB, estimate


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('configs', nargs='+')
    parser.add_argument('--batch', type=int, default=4, help='images per GPU (the recipe: 4)')
    parser.add_argument('--grad-checkpointing', action='store_true')
    parser.add_argument('--bf16', action='store_true', help='bf16 autocast (as tools/train.py --amp bf16)')
    args = parser.parse_args(argv)
    print(f'| config | weights, grads, AdamW, EMA | other fixed | activations / image | total at batch {args.batch} |')
    print('|---|---:|---:|---:|---:|')
    for path in args.configs:
        r = estimate(path, args.batch, args.grad_checkpointing, args.bf16)
        print(f'| `{osp.basename(path)}` | {r["static"] / GIB:.2f} GiB | {r["fixed"] / GIB:.2f} GiB '
              f'| {r["activations_per_image"] / GIB:.2f} GiB '
              f'| {r["total"] / GIB:.1f} GiB |', flush=True)


if __name__ == '__main__':
    main()
