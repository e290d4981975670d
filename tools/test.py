"""Evaluate a checkpoint on a config's test set: ``python tools/test.py CONFIG CHECKPOINT``.
For several target domains at once use ``tools/cross_domain_eval.py``.

``--out DIR`` also writes every prediction as a label PNG under ``DIR`` (one folder per domain);
``--format-only`` only writes them, for a test split without labels whose score comes from a benchmark
server (the Cityscapes -> ACDC configs' test split is evaluated this way).
"""
import argparse
import os
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
    parser.add_argument('--out', help='write the predictions as label PNGs into this (new or empty) folder')
    parser.add_argument('--format-only', action='store_true',
                        help='only write the predictions (needs --out or a config whose test evaluator writes)')
    parser.add_argument('--label-encoding', choices=['label_id', 'train_id'], default=None,
                        help="PNG encoding of the predictions: Cityscapes label ids (cityscapesScripts' encoding; "
                             "the default of a writer added by --out) or the 19 train ids (the ACDC configs' own "
                             'writer, as the official configs)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'], default='none')
    return parser.parse_args()


def main():
    args = parse_args()
    if not osp.isfile(args.checkpoint):
        raise SystemExit(f'checkpoint {args.checkpoint} does not exist')
    cfg = load_tool_config(args.config, args.cfg_options, args.launcher, args.work_dir)
    with input_errors_as_messages():
        configure_prediction_output(cfg, args.out, args.format_only, args.label_encoding)
        # loaded here rather than through cfg.load_from: mmengine only warns about a checkpoint that does not
        # fit, and this also handles full (no pretrained file needed), adapter-only and merged checkpoints
        runners = []

        def build():
            runners.append(Runner.from_cfg(cfg))
            model = runners[0].model
            return model.module if hasattr(model, 'module') else model
        build_and_load(cfg.model, args.checkpoint, build)
        runners[0].test()


def _writers(evaluator):
    items = evaluator if isinstance(evaluator, list) else [evaluator]
    return [e for e in items if e.get('type') == 'SegPredictionWriter']


def configure_prediction_output(cfg, out=None, format_only=False, encoding=None):
    """Point the config's test evaluator at ``out``: a :class:`SegPredictionWriter` beside the metric, or
    alone with ``format_only``. A config whose test evaluator is already a writer (a test split without
    labels) keeps it, with its folder under the work dir unless ``out`` is given."""
    writers = _writers(cfg.test_evaluator)
    if out:
        if osp.isdir(out) and os.listdir(out):
            raise FileExistsError(f'--out {out} is not empty: predictions go into a new or empty folder')
        if not writers:
            items = cfg.test_evaluator if isinstance(cfg.test_evaluator, list) else [cfg.test_evaluator]
            cfg.test_evaluator = [*items, dict(type='SegPredictionWriter')]
            writers = _writers(cfg.test_evaluator)  # the config holds its own copies
    for w in writers:
        w['output_dir'] = out or osp.join(cfg.work_dir, w.get('output_dir', 'format_results'))
        if encoding:
            w['encoding'] = encoding
    if format_only:
        if not writers:
            raise ValueError('--format-only needs --out DIR: where the predictions go')
        cfg.test_evaluator = writers[0] if len(writers) == 1 else writers
    return cfg


if __name__ == '__main__':
    main()
