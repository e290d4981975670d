"""Per-domain results as tables: markdown (console and ``results.md``), CSV and JSON.

``results`` is ``{domain: dict(<score>=float, ..., num_images=int, per_class={class: float}, ...)}``, as
:class:`MultiDomainIoUMetric` / :class:`MultiDomainVOCMetric` leave it in their ``domain_results``.
"""
import csv
import json
import os
import os.path as osp
from typing import Dict, List, Optional, Sequence

import numpy as np

from mmdg.utils.atomic import atomic_open


def _cell(v: float) -> str:
    return '-' if v != v else f'{v:.2f}'


def domain_table(results: Dict[str, Dict], mean_over: Optional[List[str]] = None,
                 scores: Sequence[str] = ('aAcc', 'mIoU', 'mAcc'), titles: Optional[Sequence[str]] = None,
                 unseen: Optional[List[str]] = None) -> str:
    """``| domain | <scores> | images |`` with a bold row per mean of :func:`mean_domains`: ``mean`` (the
    protocol's official mean, over ``mean_over``, default all) and, where it differs, ``mean_unseen``."""
    from mmdg.evaluation.multi_domain_metric import mean_domains
    names = list(results)
    titles = list(titles or scores)
    rows = ['| domain | ' + ' | '.join(titles) + ' | images |', '|---|' + '---:|' * (len(scores) + 1)]
    rows += [f'| {n} | ' + ' | '.join(_cell(results[n][s]) for s in scores) + f' | {results[n]["num_images"]} |'
             for n in names]
    for label, over in mean_domains(names, mean_over, unseen).items():
        if over:
            means = [float(np.mean([results[n][s] for n in over])) for s in scores]
            rows.append(f'| **{label} ({", ".join(over)})** | ' + ' | '.join(f'**{_cell(m)}**' for m in means) + ' | |')
    return '\n'.join(rows)


def per_class_table(results: Dict[str, Dict], key: str = 'per_class') -> str:
    """Classes (full names) down, domains across: ``results[d][key][class]``; ``-`` for NaN."""
    names = list(results)
    rows = ['| class | ' + ' | '.join(names) + ' |', '|---|' + '---:|' * len(names)]
    for c in next(iter(results.values()))[key]:
        rows.append(f'| {c} | ' + ' | '.join(_cell(results[n][key][c]) for n in names) + ' |')
    return '\n'.join(rows)


def write_results(out_dir: str, results: Dict[str, Dict], markdown: str, scores: Sequence[str],
                  per_class: Dict[str, str], **meta) -> List[str]:
    """``results.md`` (``markdown``), ``results.json`` (``meta`` and ``results``) and ``results.csv``
    (domain, ``scores``, images, then ``<label>.<class>`` for each ``{per-class key: label}`` of
    ``per_class``, e.g. ``IoU.road``) in ``out_dir``. Returns the paths written."""
    os.makedirs(out_dir, exist_ok=True)
    paths = [osp.join(out_dir, f'results.{ext}') for ext in ('md', 'json', 'csv')]
    with atomic_open(paths[0], 'w') as f:
        f.write(markdown)
    with atomic_open(paths[1], 'w') as f:
        json.dump(dict(meta, results=results), f, indent=1)
    first = next(iter(results.values()))
    columns = [(k, c) for k in per_class for c in first[k]]
    with atomic_open(paths[2], 'w', newline='') as f:
        writer = csv.writer(f)
        writer.writerow(['domain', *scores, 'images', *(f'{per_class[k]}.{c}' for k, c in columns)])
        for name, r in results.items():
            writer.writerow([name, *(f'{r[s]:.4f}' for s in scores), r['num_images'],
                             *(f'{r[k][c]:.4f}' for k, c in columns)])
    return paths
