"""Evaluate a checkpoint on a config's test set with mmengine's test loop (``Runner.test()``), as mmseg's
and mmdet's ``tools/test.py``: ``python tools/test.py CONFIG CHECKPOINT [options]``. For the target
domains of a config one at a time (tables, CSV, JSON) use ``tools/cross_domain_eval.py``.

``--out DIR`` also writes every prediction as a label PNG under ``DIR`` (one folder per domain; for a
detection config ``--out FILE.pkl`` dumps the detections as mmdet does); ``--format-only`` only writes
them, for a test split without labels whose score comes from a benchmark server (the Cityscapes -> ACDC
configs' test split is evaluated this way). ``--show-dir DIR`` draws ground truth beside prediction with
class names through the config's visualizer into ``DIR/<domain>/``; ``--show`` opens them in a window.
``--tta`` runs the official multi-scale (0.5-1.75) + flip test-time augmentation (mmseg's
``SegTTAModel``; the config's own ``tta_model`` / ``tta_pipeline`` when it has them).
``--cross-domain [tools/cross_domain_eval.py options]`` runs ``tools/cross_domain_eval.py`` instead, so
that ``tools/dist_test.sh CONFIG CHECKPOINT 8 --cross-domain --targets ...`` evaluates per domain on 8 GPUs.
"""
import argparse
import os.path as osp
import sys

from mmengine.config import DictAction

from mmdg.utils.console import add_console_arguments
from mmdg.utils.tool_config import input_errors_as_messages, load_tool_config


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Test a model with an mmdg config')
    parser.add_argument('config')
    parser.add_argument('checkpoint')
    parser.add_argument('--work-dir')
    parser.add_argument('--out', help='write the predictions as label PNGs into this (new or empty) folder '
                                      '(detection: a .pkl file of the detections)')
    parser.add_argument('--format-only', action='store_true',
                        help='only write the predictions (needs --out or a config whose test evaluator writes)')
    parser.add_argument('--label-encoding', choices=['train_id', 'label_id'], default=None,
                        help="PNG encoding of the predictions: the 19 train ids (the default, as tools/infer.py and "
                             "the official ACDC configs) or Cityscapes label ids (cityscapesScripts' encoding)")
    parser.add_argument('--show-dir', help='draw labelled ground truth | prediction pictures into this folder')
    parser.add_argument('--show', action='store_true', help='show the pictures in a window')
    parser.add_argument('--wait-time', type=float, default=2, help='seconds each shown picture stays (0: a key)')
    parser.add_argument('--tta', action='store_true', help='multi-scale + flip test-time augmentation')
    parser.add_argument('--amp', action='store_true', help='autocast the test loop (mmengine TestLoop fp16)')
    add_console_arguments(parser)
    parser.add_argument('--cross-domain', action='store_true',
                        help='run tools/cross_domain_eval.py with the other options (for tools/dist_test.sh)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'], default='none')
    return parser.parse_args(argv)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    if '--cross-domain' in argv:  # tools/dist_test.sh ... --cross-domain: that tool under the same launcher
        from mmdg.apis.cross_domain import main as cross_domain_eval
        return cross_domain_eval([a for a in argv if a != '--cross-domain'])
    args = parse_args(argv)
    from mmdg.utils.checkpoint import checkpoint_exists
    if not checkpoint_exists(args.checkpoint):
        raise SystemExit(f'checkpoint {args.checkpoint} does not exist')
    cfg = load_tool_config(args.config, args.cfg_options, args.launcher, args.work_dir)
    with input_errors_as_messages():
        return run_test(cfg, args)


def run_test(cfg, args):
    from mmengine.dist import is_main_process
    from mmdg.apis.evaluation import (add_visualization, build_test_runner, configure_detection_output,
                                      configure_prediction_output, domain_results)
    if cfg.get('task') == 'det':
        configure_detection_output(cfg, args.out, args.format_only)
    else:
        configure_prediction_output(cfg, args.out, args.format_only, args.label_encoding)
    runner = build_test_runner(cfg, args.checkpoint, args.tta, args.amp, console_args=args)
    if args.show_dir or args.show:
        add_visualization(runner, args.show_dir, show=args.show, wait_time=args.wait_time)
    metrics = runner.test()
    if is_main_process():
        report(runner, metrics, domain_results(runner), args)
    return metrics


def report(runner, metrics, results, args):
    """The scores on the console (the run's log holds the per-class tables)."""
    from mmdg.evaluation import domain_table, per_class_table
    if results:
        first = next(iter(results.values()))
        scores = [s for s in ('aAcc', 'mIoU', 'mAcc', 'mAP') if s in first]
        metric = next((m for m in runner.test_loop.evaluator.metrics if hasattr(m, 'unseen')), None)
        print(domain_table(results, getattr(metric, 'mean_over', None), scores, unseen=getattr(metric, 'unseen', None)))
        if first.get('per_class'):  # after the summary, as mmseg's test prints it
            print(f'\nPer-class {"AP@0.5" if "mAP" in first else "IoU"}:\n\n{per_class_table(results)}')
    elif metrics:
        print('\n'.join(f'{k}: {v:.2f}' if isinstance(v, float) else f'{k}: {v}' for k, v in metrics.items()))
    where = [f'log: {osp.join(runner.log_dir, runner.timestamp + ".log")}']
    from mmdg.apis.evaluation import prediction_writers
    from mmdg.evaluation.prediction_writer import ENCODINGS
    for w in prediction_writers(runner):
        where.append(f'predictions: {w.output_dir} ({w.encoding}: {ENCODINGS[w.encoding]}; label_encoding.json '
                     'beside them)')
    if args.show_dir:
        where.append(f'pictures: {args.show_dir}')
    print('\n' + '; '.join(where))


if __name__ == '__main__':
    main()
