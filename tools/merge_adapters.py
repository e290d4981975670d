"""Fold every adapter into plain weights: ``python tools/merge_adapters.py CONFIG CHECKPOINT OUT``.

The output loads into the same config without adapters (``model.backbone.adapter=None``) or into
``--plain-config``, and runs at the plain ViT's speed. Before writing, the plain model and the adapted one
run on the same random input; a relative difference above ``--rtol`` stops the tool with nothing
written. The file is written atomically and never over CHECKPOINT.

    --backbone-only timm|official   write only the merged ViT, in timm's or Meta's DINOv2 layout
"""
import argparse


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('config')
    p.add_argument('checkpoint', help='full or adapter-only checkpoint of CONFIG')
    p.add_argument('out')
    p.add_argument('--plain-config', help='config the merged checkpoint is for (default: CONFIG without adapters)')
    p.add_argument('--backbone-only', choices=['timm', 'official'])
    p.add_argument('--input-size', type=int, nargs=2, default=[64, 64], metavar=('H', 'W'),
                   help='random input the two models are compared on')
    p.add_argument('--rtol', type=float, default=1e-4)
    p.add_argument('--overwrite', action='store_true', help='replace OUT if it exists (never CHECKPOINT)')
    args = p.parse_args(argv)
    from mmdg.apis.merge import merge_checkpoint
    from mmdg.utils.tool_config import input_errors_as_messages, quiet_model_logs
    quiet_model_logs()
    with input_errors_as_messages():
        r = merge_checkpoint(args.config, args.checkpoint, args.out, args.plain_config, args.backbone_only,
                             tuple(args.input_size), args.rtol, args.overwrite)
    print(f'merged {r["adapters"]} adapted layers; plain vs adapted relative difference '
          f'{r["relative_error"]:.2e}; wrote {r["out"]}')


if __name__ == '__main__':
    main()
