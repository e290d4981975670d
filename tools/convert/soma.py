"""Turn a released SoMA checkpoint (official SoRA code, "adapter & head" file) into an mmdg checkpoint.

    python tools/convert/soma.py checkpoints/dinov2_vitl14_pretrain.pth \
        checkpoints/soma_dinov2-L_g2cbm_best.pth checkpoints/soma_dinov2-l_g2cbm_mmdg.pth [--crop 512]

DINOV2_PTH is Meta's ``dinov2_vitl14_pretrain.pth``; its patch kernel and position grid are resized with
plain bicubic interpolation, as the official conversion does (the released models were trained on those
tokens). The official converted file or a ``tools/convert/vit.py --patch-resample bicubic`` output for
the same crop size are accepted as well. SOMA_PTH holds the LoRA factors, the
biases and the Mask2Former head; a released detection checkpoint (DINOv2-L SoRA + Co-DINO, recognised by
its ``query_head.*`` tensors) holds the backbone and the whole detector, and converts for
``configs/dg_det/sora/sora_dinov2-l_codino_4xb2-40k_dwd-1024.py`` by default (the official Co-DINO names are
mapped onto mmdg's CoDINO, which follows mmdet's DINO layout). The output is a full state dict of the mmdg SoRA segmentor built from
``--config`` (default: the GTA5 -> C/B/M 512 config, or the Cityscapes -> ACDC 1024 config with
``--crop 1024``), for ``tools/test.py`` and ``tools/cross_domain_eval.py`` with that config.

Weights: by default the EMA-averaged ones, which the official evaluation runs (mmengine's EMAHook saves
them under ``state_dict`` and moves the raw training weights to ``ema_state_dict``); ``--no-ema`` takes
the raw ones. A file for another model, crop size or rank stops with the keys and shapes that differ.
"""
import argparse

from mmdg.convert.released import run_conversion
from mmdg.convert.soma import DEFAULT_CONFIGS, convert_soma_release


def main(argv=None):
    from mmengine.config import DictAction
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('dinov2', metavar='DINOV2_PTH', help="Meta's dinov2_vitl14_pretrain.pth")
    parser.add_argument('soma', metavar='SOMA_PTH', help='released SoMA adapter & head checkpoint')
    parser.add_argument('out', metavar='OUT_PTH', help='output mmdg checkpoint')
    parser.add_argument('--config', help='mmdg SoRA config the checkpoint is for (default: see above)')
    parser.add_argument('--crop', type=int, choices=sorted(DEFAULT_CONFIGS),
                        help='crop size the SoMA model was trained with (default: the config\'s img_size); '
                             'must match the config')
    ema = parser.add_mutually_exclusive_group()
    ema.add_argument('--ema', dest='ema', action='store_true', default=None,
                     help='require the EMA-averaged weights (the default when the file has them)')
    ema.add_argument('--no-ema', dest='ema', action='store_false', help='take the raw training weights')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, help='override config values')
    args = parser.parse_args(argv)
    run_conversion(lambda: print(convert_soma_release(args.dinov2, args.soma, args.out, config=args.config,
                                                      crop=args.crop, ema=args.ema, cfg_options=args.cfg_options)))


if __name__ == '__main__':
    main()
