"""Turn a released Rein checkpoint (official Rein code, "rein and head" file) into an mmdg checkpoint.

    python tools/convert/rein.py checkpoints/dinov2_vitl14_pretrain.pth \
        checkpoints/dinov2_rein_and_head.pth checkpoints/rein_dinov2-l_gta5-to-cbm_mmdg.pth [--config CFG]

BACKBONE_PTH is the frozen ViT the Rein model was trained on: Meta's ``dinov2_vitl14_pretrain.pth`` or
EVA02's ``eva02_L_pt_m38m_p14.pt`` (patch kernel and position grid resized by plain bicubic
interpolation, as the official conversion does), or the official converted file. REIN_PTH holds what
training changed: ``backbone.reins.*`` and the ``decode_head.*`` of ``ReinMask2FormerHead``. The output is
a full state dict of the mmdg Rein segmentor built from ``--config`` (default: the DINOv2-L GTA5 -> C/B/M
config; pass the EVA02-L one for an EVA02 model), for ``tools/test.py`` and ``tools/cross_domain_eval.py``.

The key mapping from the official layout is described in mmdg/convert/rein.py.
A file for another width, depth, token count or rank stops with the keys and shapes that differ.
"""
import argparse

from mmdg.convert.released import run_conversion
from mmdg.convert.rein import convert_rein_release


def main(argv=None):
    from mmengine.config import DictAction
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('backbone', metavar='BACKBONE_PTH', help='the pre-trained DINOv2-L / EVA02-L checkpoint')
    parser.add_argument('rein', metavar='REIN_PTH', help='released Rein "rein and head" checkpoint')
    parser.add_argument('out', metavar='OUT_PTH', help='output mmdg checkpoint')
    parser.add_argument('--config', help='mmdg Rein config the checkpoint is for (default: the DINOv2-L one)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, help='override config values')
    args = parser.parse_args(argv)
    run_conversion(lambda: print(convert_rein_release(args.backbone, args.rein, args.out, config=args.config,
                                                      cfg_options=args.cfg_options)))


if __name__ == '__main__':
    main()
