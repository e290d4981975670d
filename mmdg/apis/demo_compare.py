"""``make demo-compare``: every tuning method from the same pre-trained demo backbone, with the same data,
schedule and seeds, scored on the source style and each unseen style; a markdown table and a bar chart.

One row per method (mean over the seeds, with the spread when there are several): trainable backbone
parameters, source mIoU, each unseen style's mIoU and their mean.
"""
from __future__ import annotations

import json
import os
import os.path as osp
import time
from typing import Dict, List, Optional, Sequence

import numpy as np

from mmdg.apis.demo import DEFAULT_DATA_ROOT, METHODS, run_demo
from mmdg.datasets.synthetic import DOMAINS
from mmdg.utils.checkpoint import atomic_write

UNSEEN = tuple(d for d in DOMAINS if d != 'source')
#: The comparison's schedule: ``make demo``'s, so that its SoRA row is what ``make demo`` prints.
COMPARE_ITERS = 500


def _mean_std(values: Sequence[float]):
    return float(np.mean(values)), (float(np.std(values, ddof=1)) if len(values) > 1 else None)


def summarise(runs: Dict[str, List[Dict]]) -> Dict[str, Dict]:
    """``{method: {parameters, seeds, source, <style>..., unseen: (mean, std or None)}}`` from the
    ``run_demo`` results of each method over its seeds."""
    out = {}
    for method, results in runs.items():
        row = dict(parameters=results[0]['parameters']['backbone'], seeds=len(results))
        for d in DOMAINS:
            row[d] = _mean_std([r['trained'][d]['mIoU'] for r in results])
        row['unseen'] = _mean_std([np.mean([r['trained'][d]['mIoU'] for d in UNSEEN]) for r in results])
        out[method] = row
    return out


def _cell(value) -> str:
    mean, std = value
    return f'{mean:.2f}' if std is None else f'{mean:.2f} ± {std:.2f}'


def compare_table(summary: Dict[str, Dict]) -> str:
    """Markdown: method | trainable backbone parameters | source | each unseen style | mean unseen."""
    head = ['method', 'trainable (backbone)', 'source'] + list(UNSEEN) + ['**mean unseen**']
    lines = ['| ' + ' | '.join(head) + ' |', '|' + '---|' + '---:|' * (len(head) - 1)]
    for method, row in summary.items():
        cells = [method, f'{row["parameters"]:,}'] + [_cell(row[d]) for d in DOMAINS] + [f'**{_cell(row["unseen"])}**']
        lines.append('| ' + ' | '.join(cells) + ' |')
    return '\n'.join(lines)


def compare_chart(summary: Dict[str, Dict], path: str, title: str = '') -> None:
    """Bars of source and mean-unseen mIoU per method (error bars: the spread over seeds)."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    methods = list(summary)
    x = np.arange(len(methods))
    fig, ax = plt.subplots(figsize=(max(6.0, 0.9 * len(methods) + 2), 3.8), dpi=120)
    for offset, key, label, colour in ((-0.2, 'source', 'source style (seen)', '#9aa5b1'),
                                       (0.2, 'unseen', 'mean of the 4 unseen styles', '#d9480f')):
        means = [summary[m][key][0] for m in methods]
        stds = [summary[m][key][1] or 0.0 for m in methods]
        bars = ax.bar(x + offset, means, 0.4, yerr=stds if any(stds) else None, capsize=3, label=label,
                      color=colour)
        ax.bar_label(bars, fmt='%.1f', fontsize=7, padding=2)
    ax.set_xticks(x, [f'{m}\n{summary[m]["parameters"] / 1e3:.0f}k' for m in methods], fontsize=8)
    ax.set_ylabel('mIoU (%)')
    ax.set_title(title or 'Demo: every method from the same pre-trained backbone (trainable backbone parameters '
                 'under each name)', fontsize=9)
    ax.legend(fontsize=8, loc='upper right')
    ax.set_ylim(0, max(summary[m]['source'][0] for m in methods) * 1.25)
    ax.grid(axis='y', alpha=0.3)
    fig.tight_layout()
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    atomic_write(path, lambda f: fig.savefig(f, format='png'))
    plt.close(fig)


def run_compare(methods: Sequence[str] = METHODS, seeds: Sequence[int] = (0,), max_iters: int = COMPARE_ITERS,
                data_root: str = DEFAULT_DATA_ROOT, work_dir: str = 'work_dirs/demo_compare',
                pretrained: Optional[str] = None, num_train: int = 200, num_val: int = 50,
                num_workers: Optional[int] = None, quiet: bool = True, progress=print) -> Dict:
    """Run :func:`mmdg.apis.demo.run_demo` for every method and seed; write ``results.md``, ``results.json``
    and ``chart.png`` into ``work_dir``. Returns ``dict(summary=..., table=str, chart=path, seconds=float)``."""
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise ValueError(f'unknown demo method(s) {unknown}; choose from {", ".join(METHODS)}')
    if not seeds:
        raise ValueError('at least one seed is needed')
    t0 = time.time()
    runs: Dict[str, List[Dict]] = {m: [] for m in methods}
    total, done = len(methods) * len(seeds), 0
    for seed in seeds:
        for method in methods:
            res = run_demo(method, data_root, osp.join(work_dir, method, f'seed{seed}'), max_iters, pretrained,
                           num_train=num_train, num_val=num_val, num_workers=num_workers, num_overlays=0,
                           quiet=quiet, seed=seed)
            runs[method].append(res)
            done += 1
            unseen = np.mean([res['trained'][d]['mIoU'] for d in UNSEEN])
            progress(f'[{done}/{total}] {method} seed {seed}: source {res["trained"]["source"]["mIoU"]:.2f}, '
                     f'mean unseen {unseen:.2f} mIoU ({res["seconds"]:.0f} s)')
    summary = summarise(runs)
    table = compare_table(summary)
    seconds = time.time() - t0
    chart = osp.join(work_dir, 'chart.png')
    compare_chart(summary, chart)
    header = (f'{len(methods)} methods x {len(seeds)} seed(s) {list(seeds)}, {max_iters} iterations each, '
              f'{num_train} source images, {num_val} images per style; {seconds / 60:.1f} min.')
    atomic_write(osp.join(work_dir, 'results.md'), lambda f: f.write(f'{header}\n\n{table}\n'.encode()))
    record = dict(methods=list(methods), seeds=list(seeds), max_iters=max_iters, seconds=seconds,
                  summary=summary,
                  runs={m: [dict(seed=s, trained=r['trained'], parameters=r['parameters'], seconds=r['seconds'])
                            for s, r in zip(seeds, rs)] for m, rs in runs.items()})
    atomic_write(osp.join(work_dir, 'results.json'), lambda f: f.write(json.dumps(record, indent=1).encode()))
    return dict(summary=summary, table=table, chart=chart, header=header, seconds=seconds, runs=runs)
