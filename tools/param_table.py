"""Trainable-parameter table of every adapter at its default settings (docs/adapters.md).

    python tools/param_table.py [--write docs/adapters.md | --check docs/adapters.md]

Models are built on the meta device (no memory, no weights), so the whole table takes seconds.
"""
import argparse
import copy
import functools
import os.path as osp
import warnings

import timm
import torch

from mmdg.adapters import ADAPTERS, count_parameters, inject_adapters
from mmdg.utils.markdown import write_or_check

BACKBONES = {'DINOv2-S': 'vit_small_patch14_dinov2', 'DINOv2-B': 'vit_base_patch14_dinov2',
             'DINOv2-L': 'vit_large_patch14_dinov2', 'EVA02-L': 'eva02_large_patch14_224',
             'DINOv3-L': 'vit_large_patch16_dinov3', 'DINOv3-7B': 'vit_7b_patch16_dinov3'}
METHODS = osp.join(osp.dirname(osp.dirname(osp.abspath(__file__))), 'configs', '_base_', 'methods')


def recipe(method: str) -> dict:
    """The adapter dict of ``configs/_base_/methods/<method>.py`` (plain dicts over their ``_base_``)."""
    ns = {}
    with open(osp.join(METHODS, f'{method.lower()}.py')) as f:
        exec(f.read(), ns)
    return ns['model']['backbone']['adapter']


LINEAR = [name for name, cls in ADAPTERS.items() if cls.target_kind == 'linear']
ROWS = [(name, dict(type=name)) for name in LINEAR] + [
    (f'{name} recipe', recipe(name)) for name in ADAPTERS
    if osp.exists(osp.join(METHODS, f'{name.lower()}.py'))]
BEGIN, END = '<!-- param-table:begin -->', '<!-- param-table:end -->'


@functools.lru_cache(maxsize=None)
def plain_vit(arch):
    with torch.device('meta'):
        return timm.create_model(arch, pretrained=False, num_classes=0)


def count(arch, cfg):
    with torch.device('meta'), warnings.catch_warnings():
        warnings.simplefilter('ignore')  # SoRA / PiSSA warn that a meta SVD has no values: shapes suffice here
        vit = copy.deepcopy(plain_vit(arch))  # built once per backbone: each row adapts its own copy
        if cfg is None:
            return count_parameters(vit)
        if 'blocks' in cfg and cfg['blocks'][1] > len(vit.blocks):
            return None
        return count_parameters(inject_adapters(vit, cfg))


def table() -> str:
    head = '| method | ' + ' | '.join(BACKBONES) + ' |'
    rows = [head, '|---|' + '---:|' * len(BACKBONES)]
    rows.append('| full fine-tuning | ' + ' | '.join(f'{count(a, None):,}' for a in BACKBONES.values()) + ' |')
    for name, cfg in ROWS:
        cells = []
        for arch in BACKBONES.values():
            n = count(arch, cfg)
            cells.append('n/a' if n is None else f'{n:,}')
        rows.append(f'| {name} | ' + ' | '.join(cells) + ' |')
    return '\n'.join(rows)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--write', metavar='DOC', help='replace the table between the param-table markers of DOC')
    parser.add_argument('--check', metavar='DOC', help='exit 1 if the table in DOC is not the current one')
    args = parser.parse_args(argv)
    text = table()
    if args.write or args.check:
        write_or_check(args.write or args.check, BEGIN, END, text, bool(args.check), 'tools/param_table.py')
    else:
        print(text)


if __name__ == '__main__':
    main()
