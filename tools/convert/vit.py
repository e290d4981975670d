"""Convert an official DINOv2 / EVA02 checkpoint into what mmdg's ``TimmViT`` loads.

    python tools/convert/vit.py dinov2_vitl14_pretrain.pth checkpoints/dinov2_l_p16_512.pth \
        --arch dinov2-l --img-size 512 --patch-size 16

Handles Meta's ``dinov2_vit{s,b,l,g}14[_reg4]_pretrain.pth`` and EVA02 checkpoints (official and timm
layouts, ``.pth`` or the ``.safetensors`` files timm and Hugging Face ship): keys renamed by timm's own checkpoint filters, patch kernel (14 -> 16) and position
embeddings resampled to the input grid. ``--patch-resample pinv`` (default) is timm's resampling
(pseudo-inverse kernel, antialiased positions); ``bicubic`` is plain bicubic interpolation of both, the
official SoRA/SoMA conversion, which their released models were trained with. The output is a
timm-layout state dict; a file that does not fit the architecture stops with the missing / unexpected /
mis-shaped keys; a truncated or corrupt file is named as such, in one line.
"""
import argparse
import os
import os.path as osp


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('src', help='official checkpoint (.pth / .pt / .safetensors)')
    parser.add_argument('dst', help='output file')
    parser.add_argument('--arch', required=True, help='dinov2-{s,b,l,g}[-reg4], eva02-{s,b,l} or a timm name')
    parser.add_argument('--img-size', type=int, nargs='+', default=[512], help='H [W]')
    parser.add_argument('--patch-size', type=int, default=16)
    parser.add_argument('--patch-resample', choices=['pinv', 'bicubic'], default='pinv',
                        help="kernel / position resampling: timm's ('pinv') or the official SoRA one ('bicubic')")
    args = parser.parse_args(argv)

    from mmdg.utils.tool_config import input_errors_as_messages
    with input_errors_as_messages():
        convert(args)


def convert(args):
    from mmdg.convert.vit import build_timm_vit, load_vit_weights
    from mmdg.utils.checkpoint import atomic_save

    if osp.abspath(args.src) == osp.abspath(args.dst):
        raise SystemExit('refusing to overwrite the source checkpoint; choose another output path')
    size = tuple(args.img_size) if len(args.img_size) == 2 else args.img_size[0]
    vit = build_timm_vit(args.arch, img_size=size, patch_size=args.patch_size)
    load_vit_weights(vit, args.src, patch_resample=args.patch_resample)
    os.makedirs(osp.dirname(osp.abspath(args.dst)), exist_ok=True)
    atomic_save(dict(state_dict=vit.state_dict(),
                     meta=dict(arch=args.arch, img_size=size, patch_size=args.patch_size,
                               patch_resample=args.patch_resample, source=osp.basename(args.src))), args.dst)
    n = sum(p.numel() for p in vit.parameters())
    print(f'wrote {args.dst}: {args.arch}, patch {args.patch_size} ({args.patch_resample}), input {size}, '
          f'{n / 1e6:.1f}M parameters')


if __name__ == '__main__':
    main()
