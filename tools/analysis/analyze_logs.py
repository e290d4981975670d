"""Training curves from mmengine's json scalars log: loss, lr, weight decay and per-domain mIoU / mAP.

    python tools/analysis/analyze_logs.py WORK_DIR_OR_SCALARS_JSON [...] --out curves.png [--keys loss lr]

A work dir is searched for ``*/vis_data/scalars.json`` (every run in it, in time order, so a resumed run
continues its curve). Several inputs are drawn side by side in each panel (labelled by their folder).
Default panels: every training key with 'loss' in its name, lr, weight_decay, and the validation
scores (``<domain>/mIoU`` or ``<domain>/mAP``, one line per domain). --csv also writes the values.
"""
import argparse
import csv
import glob
import json
import os
import os.path as osp
import re

from mmdg.utils.atomic import atomic_open
from mmdg.utils.tool_config import savefig


def find_logs(path):
    if osp.isfile(path):
        return [path]
    found = sorted(glob.glob(osp.join(path, '*', 'vis_data', 'scalars.json')))
    found += sorted(glob.glob(osp.join(path, 'vis_data', 'scalars.json')))
    if not found:
        raise SystemExit(f'error: no */vis_data/scalars.json under {path} (is it an mmengine work dir?)')
    return found


def read_scalars(paths):
    """(train rows, val rows): each a list of dicts with 'step'. Train rows have an 'iter' or 'lr'."""
    train, val = [], []
    for path in paths:
        with open(path) as f:
            for n, line in enumerate(f, 1):
                line = line.strip()
                if not line:
                    continue
                try:
                    row = json.loads(line)
                except json.JSONDecodeError:
                    continue  # a line cut short by a killed run
                if 'step' not in row:
                    continue
                (train if ('lr' in row or 'iter' in row or 'epoch' in row and 'loss' in row) else val).append(row)
    return train, val


SCORE = re.compile(r'^(.+)/(mIoU|mAP|mAcc|aAcc|mDice)$')


def panels(train, val, keys=None):
    if keys:
        return [(k, [k]) for k in keys]
    out = []
    losses = sorted({k for r in train for k in r if 'loss' in k})
    if losses:
        out.append(('loss', losses))
    for k in ('lr', 'weight_decay', 'train/weight_decay'):
        if any(k in r for r in train):
            out.append((k.split('/')[-1], [k]))
    for metric in ('mIoU', 'mAP'):
        doms = sorted({k for r in val for k in r if SCORE.match(k) and k.endswith('/' + metric)},
                      key=lambda k: (k.startswith('mean/'), k))
        if doms:
            out.append((f'validation {metric} per domain', doms))
    return out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('inputs', nargs='+', help='work dirs or scalars.json files')
    p.add_argument('--out', required=True, help='PNG to write')
    p.add_argument('--keys', nargs='+', help='plot only these keys, one panel each')
    p.add_argument('--csv', help='also write every plotted value here')
    args = p.parse_args(argv)
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    runs = []
    for path in args.inputs:
        label = osp.basename(osp.normpath(path if osp.isdir(path) else osp.dirname(osp.dirname(osp.dirname(path)))))
        runs.append((label, *read_scalars(find_logs(path))))
    layout = panels(runs[0][1], runs[0][2], args.keys)
    for _, tr, va in runs[1:]:
        for name, keys in panels(tr, va, args.keys):
            if name not in [n for n, _ in layout]:
                layout.append((name, keys))
    if not layout:
        raise SystemExit('error: the log has no loss, lr, weight decay or validation scores to plot')
    cols = min(2, len(layout))
    rows = -(-len(layout) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(6 * cols, 3.3 * rows), squeeze=False)
    table = []
    for ax, (name, keys) in zip(axes.flat, layout):
        for label, tr, va in runs:
            for key in keys:
                src = va if SCORE.match(key) else tr
                pts = [(r['step'], r[key]) for r in src if key in r]
                if not pts:
                    continue
                xs, ys = zip(*pts)
                tag = key if len(runs) == 1 else f'{label}: {key}'
                ax.plot(xs, ys, '-o' if len(xs) < 30 else '-', ms=3, lw=2 if key.startswith('mean/') else 1.2,
                        label=tag)
                table += [dict(run=label, key=key, step=x, value=y) for x, y in pts]
        ax.set_title(name, fontsize=10)
        ax.set_xlabel('iteration', fontsize=8)
        ax.grid(alpha=0.3)
        ax.tick_params(labelsize=7)
        if name in ('lr', 'weight_decay'):
            ax.ticklabel_format(axis='y', style='sci', scilimits=(-2, 2))
        ax.legend(fontsize=7)
    for ax in list(axes.flat)[len(layout):]:
        ax.axis('off')
    fig.suptitle(', '.join(label for label, _, _ in runs), fontsize=10)
    fig.tight_layout()
    savefig(fig, args.out)
    print(f'-> {args.out} ({", ".join(n for n, _ in layout)})')
    if args.csv:
        os.makedirs(osp.dirname(osp.abspath(args.csv)), exist_ok=True)
        with atomic_open(args.csv, 'w', newline='') as f:
            w = csv.DictWriter(f, fieldnames=['run', 'key', 'step', 'value'])
            w.writeheader()
            w.writerows(table)


if __name__ == '__main__':
    main()
