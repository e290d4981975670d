"""Estimate the training memory of a config: the exact static part (weights, EMA copy, gradients,
AdamW moments) plus what autograd keeps for the backward pass, measured on real-size training steps
at batch 1 and 2 (random weights, images and labels): the difference is the per-image activation cost,
the rest is fixed (e.g. the bf16 weight copies autocast keeps), and both are scaled to ``--batch``.

    python tools/memory_estimate.py CONFIG [CONFIG ...] [--batch 4] [--grad-checkpointing] [--bf16]
        [--gpus 1 8 16] [--gpu-memory 80] [--cfg-options KEY=VALUE ...] [--probe]

Activations are counted with ``torch.autograd.graph.saved_tensors_hooks`` (unique storages), so the
figure is device-independent; a GPU adds its kernels' workspaces and allocator slack on top, and only a
GPU run (mmengine logs ``memory``) gives the true peak. Runs on CPU in tens of seconds per config.

A model above 1.5 B parameters (DINOv3-7B), or any with ``--probe``, is counted on the meta device and
its activations are measured on copies with a few blocks at the real width and input size, extrapolated
per block (``mmdg.apis.memory.probe_activations``): minutes on a CPU instead of more memory than it has.

``--gpus 1 8 16`` adds, per config, what one GPU holds with N GPUs under DDP (everything replicated) and
FSDP (weights, gradients, AdamW and EMA sharded; frozen weights in bf16 with ``--bf16``), and whether
training needs sharding on a ``--gpu-memory`` GiB GPU (3 GiB kept free for the CUDA context and
workspaces). Other methods from one config, as configs/_base_/methods/full.py and frozen.py set them:
full fine-tuning ``--cfg-options model.backbone.adapter=None model.backbone.frozen_blocks=0
"model.backbone.frozen_params=[norm1,norm2,ls1,ls2,pos_embed,patch_embed]"``, frozen backbone
``--cfg-options model.backbone.adapter=None model.backbone.freeze=True``.
"""
import argparse
import os.path as osp

from mmengine.config import DictAction

from mmdg.apis.memory import GIB, GPU_RESERVE, estimate, fit


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('configs', nargs='+')
    parser.add_argument('--batch', type=int, default=4, help='images per GPU (the recipe: 4)')
    parser.add_argument('--grad-checkpointing', action='store_true')
    parser.add_argument('--bf16', action='store_true', help='bf16 autocast (as tools/train.py --amp bf16)')
    parser.add_argument('--gpus', type=int, nargs='+', metavar='N', help='GPU counts for the per-GPU table')
    parser.add_argument('--gpu-memory', type=float, default=80, help='GiB of one GPU (default 80)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, help='key=value pairs merged into each config')
    parser.add_argument('--probe', action='store_true', help='measure activations by depth probe at any size')
    args = parser.parse_args(argv)
    if args.gpus and min(args.gpus) < 1:
        parser.error('--gpus takes counts of at least 1')
    results = []
    print(f'| config | weights, grads, AdamW, EMA | other fixed | activations / image | total at batch {args.batch} |')
    print('|---|---:|---:|---:|---:|')
    for path in args.configs:
        r = estimate(path, args.batch, args.grad_checkpointing, args.bf16, args.cfg_options, args.probe or None)
        results.append((path, r))
        print(f'| `{osp.basename(path)}` | {r["static"] / GIB:.2f} GiB | {r["fixed"] / GIB:.2f} GiB '
              f'| {r["activations_per_image"] / GIB:.2f} GiB '
              f'| {r["total"] / GIB:.1f} GiB |', flush=True)
    for path, r in results if args.gpus else ():
        how = 'depth probe' if r['probed'] else 'full model'
        print(f'\n`{osp.basename(path)}`: {r["params"] / 1e9:.2f} B parameters, {r["trainable"] / 1e6:.1f} M '
              f'trainable; activations measured on the {how}; batch {args.batch} per GPU; '
              f'{args.gpu_memory:g} GiB GPU, {GPU_RESERVE / GIB:g} GiB kept free\n')
        print('| GPUs | ddp per GPU | fsdp per GPU | needs sharding |')
        print('|---:|---:|---:|---|')
        for row in fit(r, args.gpus, args.gpu_memory * GIB):
            print(f'| {row["gpus"]} | {row["ddp"] / GIB:.1f} GiB | {row["fsdp"] / GIB:.1f} GiB '
                  f'| {row["needs_sharding"]} |', flush=True)


if __name__ == '__main__':
    main()
