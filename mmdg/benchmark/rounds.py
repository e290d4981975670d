"""Round-robin timing: every measurement in a process of its own, the methods interleaved (A, B, C, A, B, C,
...) over several rounds, and every ratio taken within a round.

A change in machine load (another job, thermal throttling, a shared CPU) then hits all methods of a round
alike instead of showing up as a method difference, and the spread over rounds says how far a figure can
be trusted. Each measurement returns a flat dict of numbers; :func:`summarize` gives the median over rounds
with its range, :func:`paired_ratio` the median of the per-round ratios.
"""
import json
import os
import statistics
import subprocess
import sys
import traceback
from typing import Callable, Dict, Hashable, List, Sequence


def run_in_fork(fn: Callable[[dict], dict], job: dict) -> dict:
    """``fn(job)`` in a forked child (a warm copy of this process: imports done once, its own peak memory);
    an exception becomes ``{'error': ...}``."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: measure, send the JSON back, leave without the parent's clean-up
        os.close(r)
        try:
            out = json.dumps(fn(job))
        except BaseException as e:  # noqa: B902  (anything a measurement raises is its result)
            traceback.print_exc()
            out = json.dumps(dict(error=f'{type(e).__name__}: {e}'[:300]))
        with os.fdopen(w, 'w') as f:
            f.write(out)
        os._exit(0)
    os.close(w)
    with os.fdopen(r) as f:
        text = f.read()
    _, status = os.waitpid(pid, 0)
    return json.loads(text) if text else dict(error=f'measurement process died (status {status})')


def run_in_subprocess(job: dict) -> dict:
    """The job in a fresh interpreter (``python -m mmdg.benchmark.child``): what a GPU needs, since a CUDA
    context does not survive a fork."""
    res = subprocess.run([sys.executable, '-m', 'mmdg.benchmark.child', json.dumps(job)], capture_output=True,
                         text=True)
    if res.returncode:
        sys.stderr.write(res.stderr[-3000:])
        return dict(error=(res.stderr.strip().splitlines() or ['failed'])[-1][:300])
    return json.loads(res.stdout.strip().splitlines()[-1])


def round_robin(keys: Sequence[Hashable], make_job: Callable[[Hashable], dict], rounds: int,
                run: Callable[[dict], dict], log: Callable[[str], None] = lambda msg: None
                ) -> Dict[Hashable, List[dict]]:
    """``run(make_job(key))`` for every key, in order, ``rounds`` times over: ``{key: [one result per
    round]}``."""
    out = {k: [] for k in keys}
    for r in range(rounds):
        for k in keys:
            log(f'round {r + 1}/{rounds}: {k}')
            out[k].append(run(make_job(k)))
    return out


def summarize(results: List[dict]) -> dict:
    """Numbers of several rounds -> their medians (same keys), with ``<key>_range`` (min, max) and
    ``<key>_rounds`` for every timed or measured number; ``rounds`` is how many succeeded. A failed round
    is reported by its error when every round failed."""
    ok = [r for r in results if 'error' not in r]
    if not ok:
        return dict(results[0]) if results else dict(error='not run')
    out = dict(rounds=len(ok))
    for key, value in ok[0].items():
        values = [r.get(key) for r in ok]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or any(v is None for v in values):
            out[key] = value
            continue
        if len(set(values)) == 1:  # counts, sizes: the same every round
            out[key] = value
            continue
        out[key] = statistics.median(values)
        out[f'{key}_range'] = [min(values), max(values)]
        out[f'{key}_rounds'] = values
    if len(ok) < len(results):
        out['failed_rounds'] = [r['error'] for r in results if 'error' in r]
    return out


def paired_ratio(a: List[dict], b: List[dict], field: str) -> dict:
    """``a[field] / b[field]`` within each round (both measured under the same load), then the median and
    range over rounds; ``{}`` when no round has both."""
    ratios = [x[field] / y[field] for x, y in zip(a, b) if field in x and field in y and y[field]]
    if not ratios:
        return {}
    return dict(median=statistics.median(ratios), range=[min(ratios), max(ratios)], rounds=len(ratios))
