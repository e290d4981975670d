"""Singular-value spectra of a pre-trained ViT, and where fine-tuning moved its weights.

    # the spectrum of every block's q, k, v, proj, fc1, fc2 (PNG + CSV)
    python tools/analysis/spectrum.py --arch dinov2-l --pretrained checkpoints/dinov2_l_p16_512.pth --out DIR
    python tools/analysis/spectrum.py --config CONFIG --out DIR          # the config backbone's pretrained=

    # plus, per trained run, how much of each update dW = W_trained - W_pre lies in the principal (top-r)
    # and in the minor (bottom-r) singular subspaces of W_pre
    python tools/analysis/spectrum.py --config CONFIG --out DIR \\
        --run sora configs/dg_seg/sora/X.py work_dirs/sora/iter_40000.pth \\
        --run full configs/dg_seg/full/X.py work_dirs/full/iter_40000.pth \\
        --run merged - merged_vit.pth             # '-': a plain ViT weight file (timm or official layout)

A run's checkpoint may be full, adapter-only or merged (``tools/merge_adapters.py``); adapters are
folded into plain weights before the comparison. For W_pre = U S V^T and the r largest (p) / smallest
(m) singular triplets, the CSV gives, per block and layer,

    left_top  = ||U_p U_p^T dW||^2 / ||dW||^2      left_bottom  = ||U_m U_m^T dW||^2 / ||dW||^2
    right_top = ||dW V_p V_p^T||^2 / ||dW||^2      right_bottom = ||dW V_m V_m^T||^2 / ||dW||^2

and ``chance`` = r / rank, what a random dW would give. timm's fused qkv is analysed as three matrices.

Outputs under --out: spectrum.png / spectrum.csv, and with runs subspace.png / subspace.csv / subspace.md.
"""
import argparse

import torch
from mmengine.config import DictAction


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--config', help="a config whose backbone (arch, sizes, pretrained=) defines the pre-trained ViT")
    p.add_argument('--arch', help="mmdg arch (dinov2-l, eva02-l, ...) or a timm model name (instead of --config)")
    p.add_argument('--pretrained', help="pre-trained weights (official, timm or converted layout); "
                   "default: the config backbone's pretrained=")
    p.add_argument('--timm-pretrained', action='store_true',
                   help="let timm fetch --arch's own pre-trained weights (needs network)")
    p.add_argument('--img-size', type=int, nargs='+', default=None, help='ViT input size (default: the config\'s, or 518)')
    p.add_argument('--patch-size', type=int, default=None, help='patch size (default: the config\'s, or 14)')
    p.add_argument('--model-kwargs', nargs='+', action=DictAction, default=None, metavar='K=V',
                   help='extra timm.create_model arguments for --arch (e.g. depth=6 embed_dim=192)')
    p.add_argument('--run', nargs=3, action='append', default=[], metavar=('LABEL', 'CONFIG', 'CHECKPOINT'),
                   help="a trained model to compare with the pre-trained one (CONFIG '-' for a plain ViT file)")
    p.add_argument('--rank', type=int, default=16, help='r: size of the principal / minor subspaces (default 16)')
    p.add_argument('--out', required=True, help='output folder')
    p.add_argument('--cfg-options', nargs='+', action=DictAction, default=None, help='override config entries (k=v)')
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    if not (args.config or args.arch):
        raise SystemExit('error: give --config CONFIG or --arch ARCH for the pre-trained ViT')
    from mmdg.apis.spectrum import run_spectrum
    from mmdg.utils.tool_config import input_errors_as_messages, load_tool_config, quiet_model_logs
    quiet_model_logs()
    with input_errors_as_messages(), torch.no_grad():
        run_spectrum(args, load_tool_config(args.config, args.cfg_options) if args.config else None)


if __name__ == '__main__':
    main()
