"""FLOPs and parameters of a config's model (mmengine's ``get_model_complexity_info``), per module.

    python tools/analysis/get_flops.py CONFIG [--shape 512 512] [--out DIR]

Counts one forward pass of the network (backbone, neck, head; ``mode='tensor'``) on a 1x3xHxW input,
adapters included (they are counted as the extra matrices they are; merge them first to count the plain
model). mmseg's own get_flops builds in the 'mmseg' scope and cannot find mmdg's modules.
--out writes flops.md (summary and the per-module table) and flops.json.
"""
import argparse
import json
import os
import os.path as osp

from mmdg.utils.atomic import atomic_open
from mmdg.utils.tool_config import add_cfg_options, load_scoped_config as load_config


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('config')
    p.add_argument('--shape', type=int, nargs='+', default=None,
                   help='input H W (default: the backbone img_size, else 512 512)')
    p.add_argument('--out', help='folder for flops.md and flops.json')
    add_cfg_options(p)
    args = p.parse_args(argv)
    from mmdg.utils.tool_config import input_errors_as_messages
    with input_errors_as_messages():
        run(args)


def run(args):
    import torch
    from mmengine.analysis import get_model_complexity_info
    cfg = load_config(args.config, args.cfg_options)
    backbone = cfg.model.get('backbone') or {}
    if 'pretrained' in backbone:
        backbone.pretrained = None  # counting needs no weights
    if args.shape:
        shape = tuple(args.shape) * (2 if len(args.shape) == 1 else 1)
    else:
        size = backbone.get('img_size', 512)
        shape = tuple(size) if isinstance(size, (list, tuple)) else (size, size)
    from mmdg.registry import MODELS
    model = MODELS.build(cfg.model).eval()

    class Tensor(torch.nn.Module):
        # the network alone: no data preprocessing, no post-processing of predictions
        def __init__(self, model):
            super().__init__()
            self.model = model

        def forward(self, x):
            return self.model(x, mode='tensor')
    inputs = torch.zeros(1, 3, *shape)
    with torch.no_grad():
        info = get_model_complexity_info(Tensor(model), inputs=(inputs,), show_table=True, show_arch=False)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    summary = (f'config: {args.config}\ninput: 1x3x{shape[0]}x{shape[1]}\nflops: {info["flops_str"]}\n'
               f'parameters: {info["params_str"]} ({trainable:,} trainable)\n')
    print(summary + '\n' + info['out_table'])
    if args.out:
        os.makedirs(args.out, exist_ok=True)
        with atomic_open(osp.join(args.out, 'flops.md'), 'w') as f:
            f.write('```\n' + summary + '```\n\n```\n' + info['out_table'] + '\n```\n')
        with atomic_open(osp.join(args.out, 'flops.json'), 'w') as f:
            json.dump(dict(config=args.config, input=[1, 3, *shape], flops=info['flops'], params=info['params'],
                           trainable_params=trainable), f, indent=1)
        print(f'-> {osp.join(args.out, "flops.md")}, flops.json')


if __name__ == '__main__':
    main()
