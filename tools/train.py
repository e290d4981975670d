"""Train a segmentor or detector from an mmdg config: ``python tools/train.py CONFIG [options]``.

mmdg registers itself through the config's ``default_scope`` / ``custom_imports``; this script imports
no mmdg registry (``Runner.from_cfg`` works the same way from your own code). ``--vis-backend
tensorboard|wandb`` adds a tracking backend; ``--verbose`` puts the full log on the console too.

Before the first iteration the model and the data are checked against each other (``DataModelCheckHook``);
bad input stops the run with one line naming the file or the config key. Ctrl-C stops it with one line
naming the last checkpoint, which ``--resume`` continues from.
"""
import argparse
import os

from mmengine.config import DictAction

from mmdg.utils.console import add_console_arguments, apply_console_args, build_runner
from mmdg.utils.tool_config import (apply_amp, check_total_batch, input_errors_as_messages,
                                    load_tool_config)


def parse_args():
    parser = argparse.ArgumentParser(description='Train a model with an mmdg config')
    parser.add_argument('config', help='config file path')
    parser.add_argument('--work-dir', help='where logs and checkpoints go (default: work_dirs/<config name>)')
    parser.add_argument('--resume', nargs='?', const='auto', default=None,
                        help='resume from the latest checkpoint of the work dir, or from the given one')
    parser.add_argument('--amp', nargs='?', const='fp16', default=None, choices=['fp16', 'bf16'],
                        help='automatic mixed precision: fp16 (default, dynamic loss scaling) or bf16')
    parser.add_argument('--auto-scale-lr', action='store_true',
                        help="scale the lr linearly when GPUs x batch differs from the recipe's total batch")
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config entries, e.g. train_cfg.max_iters=100')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'], default='none')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    add_console_arguments(parser)  # --vis-backend tensorboard|wandb, --verbose
    args = parser.parse_args()
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    return args


def main():
    args = parse_args()
    with input_errors_as_messages():
        train(args)


def train(args):
    cfg = load_tool_config(args.config, args.cfg_options, args.launcher, args.work_dir)
    if args.amp:
        apply_amp(cfg, args.amp)
    check_total_batch(cfg, args.auto_scale_lr)
    if args.resume == 'auto':  # the newest complete checkpoint of the work dir (none: start afresh)
        from mmdg.utils.checkpoint import find_resumable_checkpoint
        cfg.resume, cfg.load_from = True, find_resumable_checkpoint(cfg.work_dir)
        print(f'resuming from {cfg.load_from}' if cfg.load_from else f'nothing to resume in {cfg.work_dir}: '
              'starting from iteration 0')
    elif args.resume:
        cfg.resume, cfg.load_from = True, args.resume
    # quiet console: progress, results and warnings on screen; environment, config and per-parameter
    # lines only in the work dir's log file (--verbose shows them too)
    from mmdg.utils.atomic import work_dir_lock
    with work_dir_lock(cfg.work_dir):  # one training run per work dir: another would replace its checkpoints
        runner = build_runner(apply_console_args(cfg, args))
        runner.train()


if __name__ == '__main__':
    main()
