"""tools/benchmark.py: the round-robin machinery (order, medians, per-round ratios), and both suites end to end
at reduced size on the CPU: every section runs from the real configs and reports positive figures. Structure
and signs only: timings on a shared CPU say nothing."""
import json
import math
import os
import os.path as osp
import subprocess
import sys

import pytest

from mmdg.benchmark.rounds import paired_ratio, round_robin, summarize

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))


def _numbers(node, path=''):
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _numbers(v, f'{path}.{k}')
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _numbers(v, f'{path}[{i}]')
    elif isinstance(node, (int, float)) and not isinstance(node, bool):
        yield path, node


def test_round_robin_interleaves_and_ratios_pair_rounds():
    order = []
    load = iter([1.0, 2.0, 1.5, 3.0, 6.0, 4.5])  # machine load changes between the rounds

    def run(job):
        order.append(job['m'])
        return dict(step_s=next(load), trainable=7)
    raw = round_robin(['a', 'b', 'c'], lambda m: dict(m=m), 2, run)
    assert order == ['a', 'b', 'c', 'a', 'b', 'c']
    # per round, b takes twice a's time: the paired ratio says 2 exactly, the medians alone would not
    assert paired_ratio(raw['b'], raw['a'], 'step_s') == dict(median=2.0, range=[2.0, 2.0], rounds=2)
    s = summarize(raw['c'])
    assert s['step_s'] == 3.0 and s['step_s_range'] == [1.5, 4.5] and s['trainable'] == 7 and s['rounds'] == 2
    assert 'trainable_range' not in s  # the same every round: a count, not a measurement
    failed = summarize([dict(error='boom'), dict(step_s=1.0)])
    assert failed['step_s'] == 1.0 and failed['failed_rounds'] == ['boom'] and failed['rounds'] == 1
    assert summarize([dict(error='boom')]) == dict(error='boom') and paired_ratio([dict(error='x')], raw['a'], 'step_s') == {}


@pytest.mark.slow
@pytest.mark.cli
def test_reduced_cpu_run_reports_every_section(tmp_path):
    out_json, out_md = str(tmp_path / 'recipe.json'), str(tmp_path / 'recipe.md')
    # one precision / checkpointing combination keeps the run short; the loss curves train fp32 as well
    cmd = [sys.executable, osp.join(REPO, 'tools', 'benchmark.py'), '--device', 'cpu', '--reduced', '--rounds', '1',
           '--methods', 'sora', 'frozen', '--steps', '1', '--warmup', '0', '--precisions', 'bf16',
           '--grad-ckpt', 'on', '--loader-workers', '0', '2', '--loss-curve', '2', '--threads', '1',
           '--json', out_json, '--md', out_md]
    res = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, timeout=600,
                         env=dict(os.environ, OMP_NUM_THREADS='1'))
    assert res.returncode == 0, res.stderr[-3000:]
    r = json.load(open(out_json))

    assert r['env']['device'].startswith('CPU, ') and r['env']['torch']
    for section in ('train', 'mfu', 'svd', 'data', 'loader', 'slide', 'det', 'loss_curve'):
        assert section in r, section
    assert 'error' not in json.dumps(r), json.dumps(r)[:2000]

    timed = ('step_s', 'img_s', 'peak_mb', 'flops', 'fwd_bwd_s', 'achieved_gflops', 'svd_init_s', 's_per_img')
    seen = set()
    for path, value in _numbers({k: r[k] for k in ('train', 'mfu', 'svd', 'loader', 'slide', 'det')}):
        key = path.rsplit('.', 1)[-1]
        if key in timed:
            seen.add(key)
            assert value > 0 and math.isfinite(value), (path, value)
    assert seen == set(timed)

    train, mfu, slide = r['train']['dinov2-l'], r['mfu']['dinov2-l'], r['slide']['dinov2-l']
    for m in ('sora', 'frozen'):
        assert set(train[m]) == {'bf16+ckpt'}
        assert set(slide[m]) == {'bf16'}
        assert 'mfu' not in mfu[m]  # no GPU peak on a CPU: achieved FLOP/s only
    sora, frozen = train['sora']['bf16+ckpt'], train['frozen']['bf16+ckpt']
    assert frozen['backbone_trainable'] == 0 < frozen['trainable']  # the head alone trains
    assert 0 < sora['backbone_trainable'] < sora['backbone_params']  # adapters, not the whole ViT
    assert sora['trainable'] > frozen['trainable']
    assert mfu['sora']['flops'] > mfu['frozen']['flops']  # a frozen backbone has no backward pass
    assert r['det']['bf16']['detector'] == 'DINO' and r['det']['bf16']['batch'] == 2
    assert set(r['loader']) == {'0', '2'}
    assert r['data']['images'] > 0

    curves = r['loss_curve']
    for name in ('fp32', 'bf16', 'fp32_seed1'):
        assert len(curves[name]['losses']) == 2 and curves[name]['finite'], name
    # same seed: the first step sees the same weights and batch, so bf16 starts where fp32 does
    first32, first16 = curves['fp32']['losses'][0], curves['bf16']['losses'][0]
    assert abs(first16 - first32) < 0.1 * abs(first32)
    assert curves['summary']['bf16_vs_fp32'] >= 0

    md = open(out_md).read()
    assert 'REDUCED' in md and '| dinov2-l | sora |' in md and 'DINO' in md
    assert r['ratios']['dinov2-l']['bf16+ckpt']['sora/frozen']['step_s']['rounds'] == 1


@pytest.mark.slow
@pytest.mark.cli
def test_dinov3_rows_and_adapter_suite_in_the_same_rounds(tmp_path):
    """DINOv3-L beside DINOv2-L, round-robin over two rounds, with the ratios taken per round; the adapter
    suite's rows and its interleaved inference."""
    out_json = str(tmp_path / 'r.json')
    cmd = [sys.executable, osp.join(REPO, 'tools', 'benchmark.py'), '--device', 'cpu', '--reduced', '--rounds', '2',
           '--backbones', 'dinov2-l', 'dinov3-l', '--methods', 'sora', 'full', '--steps', '1', '--warmup', '0',
           '--precisions', 'fp32', '--grad-ckpt', 'off', '--skip', 'mfu', 'svd', 'loader', 'slide', 'det',
           '--threads', '1', '--json', out_json]
    res = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, timeout=600,
                         env=dict(os.environ, OMP_NUM_THREADS='1'))
    assert res.returncode == 0, res.stderr[-3000:]
    assert [line.split(': ', 1)[1] for line in res.stderr.splitlines() if line.startswith('round ')] == [
        str(k) for k in [('dinov2-l', 'sora', 'fp32'), ('dinov2-l', 'full', 'fp32'), ('dinov3-l', 'sora', 'fp32'),
                         ('dinov3-l', 'full', 'fp32')] * 2]
    r = json.load(open(out_json))
    v3 = r['train']['dinov3-l']['sora']['fp32']
    assert v3['rounds'] == 2 and v3['backbone_trainable'] != r['train']['dinov2-l']['sora']['fp32']['backbone_trainable']
    ratios = r['ratios']['dinov3-l']['fp32']
    assert ratios['sora/full']['step_s']['rounds'] == 2 and ratios['sora: dinov3-l/dinov2-l']['step_s']['median'] > 0

    cmd = [sys.executable, osp.join(REPO, 'tools', 'benchmark.py'), '--suite', 'adapters', '--arch',
           'vit_tiny_patch16_224', '--img', '32', '--batch',
           '1', '--large-img', '32', '--steps', '1', '--warmup', '0', '--rounds', '1', '--methods', 'frozen', 'SoRA',
           '--skip', 'svd', 'large', '--threads', '1', '--json', out_json]
    res = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, timeout=600,
                         env=dict(os.environ, OMP_NUM_THREADS='1'))
    assert res.returncode == 0, res.stderr[-3000:]
    r = json.load(open(out_json))
    assert set(r['vit_b']) == {'frozen', 'SoRA'} and r['vit_b']['SoRA']['trainable'] > r['vit_b']['frozen']['trainable']
    assert r['inference']['merged_over_plain'] > 0 and 'Inference, vit_tiny_patch16_224: plain' in res.stdout


@pytest.mark.slow
@pytest.mark.cli
def test_time_budget_records_what_was_not_run(tmp_path):
    """--time-budget: measurements that would start after it are recorded as not run, the report still
    prints, and the JSON (rewritten after every measurement) holds them."""
    out_json = str(tmp_path / 'recipe.json')
    cmd = [sys.executable, osp.join(REPO, 'tools', 'benchmark.py'), '--device', 'cpu', '--reduced', '--rounds', '1',
           '--methods', 'sora', '--steps', '1', '--warmup', '0', '--precisions', 'bf16', '--grad-ckpt', 'off',
           '--skip', 'mfu', 'loader', 'slide', 'det', '--threads', '1', '--time-budget', '0', '--json', out_json]
    res = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, timeout=300,
                         env=dict(os.environ, OMP_NUM_THREADS='1'))
    assert res.returncode == 0, res.stderr[-3000:]
    r = json.load(open(out_json))
    assert 'not run: the --time-budget of 0 s was spent' in r['train']['dinov2-l']['sora']['bf16']['error']
    assert 'not run' in r['svd']['error']
    assert 'not run' in res.stdout  # the markdown says so rather than leaving a blank row
    assert not osp.exists(out_json + '.part')


@pytest.mark.slow
@pytest.mark.cli
def test_gpu_benchmark_script_runs_its_parts_and_respects_the_budget(tmp_path):
    """tools/gpu_benchmark.sh, the one command for a GPU machine, as a CPU smoke run at reduced size: every
    part writes its JSON and markdown; with no budget left no part runs and the log says so."""
    env = dict(os.environ, PY=sys.executable, DEVICE='cpu', LOSS_CURVE='2', MARGIN_S='0', OMP_NUM_THREADS='1',
               BENCH_ARGS='--reduced --rounds 1 --steps 1 --warmup 0 --threads 1 --precisions bf16 --grad-ckpt off '
                          '--methods sora --loader-workers 0')
    results = tmp_path / 'results'
    res = subprocess.run(['bash', 'tools/gpu_benchmark.sh'], cwd=REPO, capture_output=True, text=True, timeout=900,
                         env=dict(env, RESULTS=str(results), BUDGET_S='900'))
    assert res.returncode == 0, (res.stdout + res.stderr)[-3000:]
    parts = ('recipe_sora', 'recipe_loss', 'recipe_all')
    assert sorted(os.listdir(results)) == sorted(['log.txt'] + [p + e for p in parts for e in ('.json', '.md')])
    sora, loss, every = (json.load(open(results / f'{p}.json')) for p in parts)
    assert {'train', 'mfu', 'svd', 'loader'} <= set(sora) and 'slide' not in sora
    assert loss['loss_curve']['bf16']['finite'] and 'train' not in loss
    assert {'train', 'slide', 'det'} <= set(every)
    assert 'error' not in json.dumps([sora, loss, every])
    log = (results / 'log.txt').read_text()
    assert 'passed' in log  # the GPU tests ran (their GPU case skipped here)

    res = subprocess.run(['bash', 'tools/gpu_benchmark.sh'], cwd=REPO, capture_output=True, text=True, timeout=300,
                         env=dict(env, RESULTS=str(tmp_path / 'none'), BUDGET_S='0'))
    assert res.returncode == 0
    assert [p for p in parts if f'{p}: not run (budget spent)' in res.stdout] == list(parts)
    assert not any(f.endswith('.json') for f in os.listdir(tmp_path / 'none'))
