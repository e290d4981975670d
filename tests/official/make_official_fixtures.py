"""Regenerate the files of tests/official/ from a checkout of the official code (see README.md there).

    python tests/official/make_official_fixtures.py --soma /path/to/SoMA --rein /path/to/Rein

The official packages are imported from the checkout given; their package ``__init__`` files (which need
extra packages such as peft) are skipped by registering empty parent packages.
"""
import argparse
import os
import os.path as osp
import sys
import types

import torch

from mmdg.utils.tool_config import flatten_config as flatten

HERE = osp.dirname(osp.abspath(__file__))


def _import_from(root: str, module: str):
    sys.path.insert(0, root)  # the official checkout's own modules (a scratch copy, not mmdg)
    parts = module.split('.')
    for i in range(1, len(parts)):
        pkg = '.'.join(parts[:i])
        if pkg not in sys.modules:
            m = types.ModuleType(pkg)
            m.__path__ = [osp.join(root, *parts[:i])]
            sys.modules[pkg] = m
    return __import__(module, fromlist=['_'])


def dinov2_pos_fixture(soma: str, out: str) -> None:
    """Inputs and outputs of the official DINOv2 ``interpolate_pos_encoding`` at several sizes."""
    official = _import_from(soma, 'rein.models.backbones.dino_v2').DinoVisionTransformer
    g = torch.Generator().manual_seed(0)
    pos = torch.randn(1, 1 + 8 * 8, 6, generator=g)  # a class position + an 8x8 grid, 6 channels
    this = types.SimpleNamespace(pos_embed=pos, patch_size=16)
    outputs = {}
    for h, w in [(128, 128), (192, 192), (96, 160), (144, 224), (80, 80)]:
        x = torch.zeros(1, 1 + (h // 16) * (w // 16), 6)
        # the official forward calls interpolate_pos_encoding(x, w, h) with B, nc, w, h = x.shape: rows first
        outputs[f'{h}x{w}'] = official.interpolate_pos_encoding(this, x, h, w).clone()
    torch.save(dict(pos_embed=pos, patch_size=16, outputs=outputs,
                    source='ysj9909/SoMA rein/models/backbones/dino_v2.py interpolate_pos_encoding'), out)
    print(f'wrote {out}')


#: The official configs whose model settings (everything but the backbone) docs/parity.md compares.
MODEL_CONFIGS = {
    'soma': ['configs/sora/sora_dinov2-L_mask2former.py', 'configs/fft_vfms/dinov2-L_mask2former.py',
             'configs/frozen_vfms/dinov2-L_mask2former.py', 'configs/sora/sora_dinov2-L_mask2former_gs2cbm.py',
             'configs/sora/sora_dinov2_mask2former_c2bm.py', 'configs/sora/sora_dinov2_mask2former_ACDC_512x512_bs4x2.py',
             'configs/sora/sora_dinov2_mask2former_ACDC_1024x1024_bs4x2.py',
             'configs/sora/sora_dinov2-L_mask2former_gsu2cbm.py', 'configs/sora/sora_dinov2-L_mask2former_gsu2cbm_1024x1024.py',
             'configs/sora/sora_dinov2-L_mask2former_gsuc16_2cbm_1024x1024.py', 'DGOD/configs/sora/sora_dinov2-L_codetr_dg.py'],
    'rein': ['configs/dinov2/rein_dinov2_mask2former_512x512_bs1x4.py',
             'configs/dinov2_citys2acdc/rein_dinov2_mask2former_512x512_bs1x4.py',
             'configs/dinov2_citys2acdc/rein_dinov2_mask2former_1024x1024_bs4x2.py'],
}


def model_configs(checkouts: dict, out: str) -> None:
    """Each official config's ``model`` without its backbone, flattened: the values docs/parity.md compares
    row by row (read with mmengine's Config, no official module imported)."""
    import json
    from mmengine.config import Config
    result = {}
    for repo, paths in MODEL_CONFIGS.items():
        for path in paths:
            model = Config.fromfile(osp.join(checkouts[repo], path), import_custom_modules=False).model.to_dict()
            model.pop('backbone', None)
            result[f'{repo}:{path}'] = flatten(model)
    with open(out, 'w') as f:
        json.dump(result, f, indent=0)
    print(f'wrote {out} ({len(result)} configs)')


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--soma', required=True, help='checkout of github.com/ysj9909/SoMA')
    parser.add_argument('--rein', required=True, help='checkout of github.com/w1oves/Rein')
    args = parser.parse_args(argv)
    dinov2_pos_fixture(args.soma, osp.join(HERE, 'dinov2_interpolate_pos_encoding.pt'))
    model_configs(dict(soma=args.soma, rein=args.rein), osp.join(HERE, 'official_model_configs.json'))


if __name__ == '__main__':
    main()
