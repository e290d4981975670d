"""Evaluate a checkpoint on a config's test set: ``python tools/test.py CONFIG CHECKPOINT``.
For several target domains at once use ``tools/cross_domain_eval.py``."""
import argparse
import os.path as osp
import sys

from mmengine.config import DictAction
from mmengine.runner import Runner

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))
from mmdg.utils.checkpoint import build_and_load  # noqa: E402
from mmdg.utils.tool_config import input_errors_as_messages, load_tool_config  # noqa: E402


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
    if not osp.isfile(args.checkpoint):
        raise SystemExit(f'checkpoint {args.checkpoint} does not exist')
    cfg = load_tool_config(args.config, args.cfg_options, args.launcher, args.work_dir)
    with input_errors_as_messages():
        # loaded here rather than through cfg.load_from: mmengine only warns about a checkpoint that does not
        # fit, and this also handles full (no pretrained file needed), adapter-only and merged checkpoints
        runners = []

        def build():
            runners.append(Runner.from_cfg(cfg))
            model = runners[0].model
            return model.module if hasattr(model, 'module') else model
        build_and_load(cfg.model, args.checkpoint, build)
        runners[0].test()


if __name__ == '__main__':
    main()
