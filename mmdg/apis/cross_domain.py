"""Per-domain evaluation of one checkpoint on a config's target domains: the command line of
``tools/cross_domain_eval.py`` (and of ``tools/test.py --cross-domain``, which runs it under its launcher)."""
import argparse
import os.path as osp

from mmengine.config import DictAction

from mmdg.utils.console import add_console_arguments
from mmdg.utils.tool_config import input_errors_as_messages, load_tool_config, positive_int


def parse_args(argv=None, description=None):
    p = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('config')
    p.add_argument('checkpoint')
    p.add_argument('--targets', nargs='+', help="names from the config's target_datasets (default: all)")
    p.add_argument('--work-dir', help='parent of the result folders (default: the checkpoint folder)')
    p.add_argument('--out-dir', help='write the results here instead (a new or empty folder)')
    p.add_argument('--slide', action='store_true', help='sliding-window inference (segmentation)')
    p.add_argument('--crop', type=int, nargs='+', default=[512], help='sliding window size (H [W])')
    p.add_argument('--stride', type=int, nargs='+', default=[341], help='sliding window stride (H [W])')
    p.add_argument('--tta', action='store_true', help='multi-scale + flip test-time augmentation (as tools/test.py)')
    p.add_argument('--amp', action='store_true', help='autocast the test loop (mmengine TestLoop fp16)')
    p.add_argument('--overlays', type=int, default=2, help='labelled pictures per target (0: none)')
    p.add_argument('--batch-size', type=positive_int, help="default: the config's test_dataloader")
    add_console_arguments(p)
    p.add_argument('--cfg-options', nargs='+', action=DictAction)
    p.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'], default='none')
    return p.parse_args(argv)


def main(argv=None, description=None):
    """``tools/cross_domain_eval.py`` (and ``tools/test.py --cross-domain``): parse ``argv``, evaluate."""
    args = parse_args(argv, description)
    from mmdg.utils.checkpoint import checkpoint_exists  # a file, or a sharded checkpoint's folder
    for path, exists in ((args.config, osp.isfile), (args.checkpoint, checkpoint_exists)):
        if not exists(path):
            raise SystemExit(f'{path} does not exist')
    fresh_out = args.out_dir and not osp.exists(args.out_dir)
    try:
        with input_errors_as_messages():
            return evaluate(args)
    except BaseException:
        # nothing half-made left behind: a folder this run created holds no results when it fails
        if fresh_out and osp.isdir(args.out_dir) and not osp.isfile(osp.join(args.out_dir, 'results.json')):
            import shutil
            shutil.rmtree(args.out_dir, ignore_errors=True)
        raise


def result_folder(args, runner) -> str:
    """``--out-dir``, else the runner's own log folder (``<work dir>/<timestamp>``, the same on every
    rank): a new folder per run."""
    return args.out_dir or runner.log_dir


def evaluate(args):
    from mmengine.dist import is_main_process
    from mmdg.apis.evaluation import add_visualization, build_test_runner, domain_results, domain_test_config
    from mmdg.evaluation import domain_table, per_class_table, write_results

    if args.out_dir and osp.isfile(osp.join(args.out_dir, 'results.json')):
        raise FileExistsError(f'--out-dir {args.out_dir} holds results already: give a new or empty folder')
    stem = osp.splitext(osp.basename(args.checkpoint))[0]
    base = args.work_dir or osp.dirname(osp.abspath(args.checkpoint))
    work_dir = args.out_dir or osp.join(base, 'cross_domain', stem)
    cfg = load_tool_config(args.config, args.cfg_options, args.launcher, work_dir)
    det = cfg.get('task') == 'det'
    if args.slide:
        if det:
            raise SystemExit('--slide is for segmentation configs; this is a detection config')
        two = lambda v: tuple(v) if len(v) == 2 else (v[0], v[0])  # noqa: E731
        cfg.model.test_cfg = dict(mode='slide', crop_size=two(args.crop), stride=two(args.stride))
    domain_test_config(cfg, args.targets, args.batch_size)
    runner = build_test_runner(cfg, args.checkpoint, args.tta, args.amp, console_args=args)
    out_dir = result_folder(args, runner)
    if args.overlays:
        add_visualization(runner, osp.join(out_dir, 'vis'), max_per_domain=args.overlays)
    runner.test()
    if not is_main_process():
        return None
    results = domain_results(runner)
    if det:
        scores, titles, keys = ('mAP',), ('mAP@0.5',), dict(per_class='AP')
        details = f'## Per-class AP@0.5\n\n{per_class_table(results)}\n'
    else:
        scores, titles, keys = ('aAcc', 'mIoU', 'mAcc'), None, dict(per_class='IoU', per_class_acc='Acc')
        details = (f'## Per-class IoU\n\n{per_class_table(results)}\n\n'
                   f'## Per-class Acc\n\n{per_class_table(results, "per_class_acc")}\n')
    ev = cfg.test_evaluator
    table = domain_table(results, ev.get('mean_over'), scores, titles, unseen=ev.get('unseen'))
    write_results(out_dir, results, f'{table}\n\n{details}', scores, keys,
                  config=args.config, checkpoint=args.checkpoint, tta=args.tta, log_dir=runner.log_dir)
    print(table)
    print(f'\nPer-class {"AP@0.5" if det else "IoU"}:\n\n{per_class_table(results)}')  # after the summary, as mmseg
    vis = ', vis/<domain>/*.png' if args.overlays else ''
    print(f'\nwritten to {out_dir}: results.md, results.csv, results.json{vis}; '
          f'full log: {osp.join(runner.log_dir, runner.timestamp + ".log")}')
    return dict(results=results, out_dir=out_dir)

