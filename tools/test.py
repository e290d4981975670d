"""Evaluate a checkpoint on a config's test set: ``python tools/test.py CONFIG CHECKPOINT``.
For several target domains at once use ``tools/cross_domain_eval.py``."""
import argparse
import os.path as osp

from mmengine.config import Config, DictAction
from mmengine.runner import Runner


def parse_args():
    parser = argparse.ArgumentParser(description='Test a model with an mmdg config')
    parser.add_argument('config')
    parser.add_argument('checkpoint')
    parser.add_argument('--work-dir')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'], default='none')
    return parser.parse_args()


def main():
    args = parse_args()
    for path in (args.config, args.checkpoint):
        if not osp.isfile(path):
            raise SystemExit(f'{path} does not exist')
    cfg = Config.fromfile(args.config)
    cfg.launcher = args.launcher
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    cfg.work_dir = args.work_dir or cfg.get('work_dir') or osp.join(
        'work_dirs', osp.splitext(osp.basename(args.config))[0])
    cfg.load_from = args.checkpoint
    Runner.from_cfg(cfg).test()


if __name__ == '__main__':
    main()
