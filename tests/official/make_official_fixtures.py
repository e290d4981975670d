"""Regenerate the files of tests/official/ from a checkout of the official code (see README.md there).

    python tests/official/make_official_fixtures.py --soma /path/to/SoMA

The official packages are imported from the checkout given; their package ``__init__`` files (which need
extra packages such as peft) are skipped by registering empty parent packages.
"""
import argparse
import os
import os.path as osp
import sys
import types

import torch

HERE = osp.dirname(osp.abspath(__file__))


def _import_from(root: str, module: str):
    sys.path.insert(0, root)
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


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--soma', required=True, help='checkout of github.com/ysj9909/SoMA')
    args = parser.parse_args(argv)
    dinov2_pos_fixture(args.soma, osp.join(HERE, 'dinov2_interpolate_pos_encoding.pt'))


if __name__ == '__main__':
    main()
