"""The config table of docs/model_zoo.md: every DG config with its trainable parameters and the
memory its weights, gradients, AdamW states and EMA copy take (exact, counted on the meta device).

    python tools/model_zoo.py [--configs configs/dg_seg] [--write docs/model_zoo.md | --check docs/model_zoo.md]

Activations come on top and depend on the GPU kernels: see tools/memory_estimate.py.
"""
import argparse
import glob
import logging
import os.path as osp
import warnings

import torch
from mmengine.config import Config

from mmdg.convert.released import build_on_meta
from mmdg.utils.markdown import write_or_check
from mmdg.utils.tool_config import quiet_model_logs

BEGIN, END = '<!-- config-table:begin -->', '<!-- config-table:end -->'
GIB = 1024 ** 3


def static_memory(model: torch.nn.Module, ema: bool = True) -> dict:
    """Bytes of fp32 weights (+ an EMA copy), gradients and AdamW's two moments of the trainable ones."""
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return dict(total=total, trainable=trainable,
                bytes=4 * (total * (2 if ema else 1) + 3 * trainable))


def rows(config_dir: str):
    for path in sorted(glob.glob(osp.join(config_dir, '*', '*.py'))):
        cfg = Config.fromfile(path)
        with warnings.catch_warnings():
            warnings.simplefilter('ignore')  # SoRA / PiSSA warn that a meta SVD has no values: shapes suffice here
            model = build_on_meta(cfg)
        backbone = sum(p.numel() for p in model.backbone.parameters() if p.requires_grad)
        mem = static_memory(model, ema=any(h.get('type') == 'EMAHook' for h in cfg.get('custom_hooks', [])))
        yield osp.relpath(path, osp.dirname(config_dir)), backbone, mem


def table(config_dir: str) -> str:
    out = ['| config | trainable in backbone | trainable in all | weights + grads + AdamW + EMA |',
           '|---|---:|---:|---:|']
    for name, backbone, mem in rows(config_dir):
        out.append(f'| `{name}` | {backbone:,} | {mem["trainable"]:,} | {mem["bytes"] / GIB:.2f} GiB |')
    return '\n'.join(out)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--configs', default=osp.join(osp.dirname(osp.dirname(osp.abspath(__file__))),
                                                      'configs', 'dg_seg'))
    parser.add_argument('--write', metavar='DOC', help='replace the table between the config-table markers of DOC')
    parser.add_argument('--check', metavar='DOC', help='exit 1 if the table in DOC is not the current one')
    args = parser.parse_args(argv)
    quiet_model_logs(logging.ERROR)  # registry fall-back notices would land in the table
    text = table(args.configs)
    if args.write or args.check:
        write_or_check(args.write or args.check, BEGIN, END, text, bool(args.check), 'tools/model_zoo.py')
    else:
        print(text)


if __name__ == '__main__':
    main()
