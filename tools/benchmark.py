"""Benchmarks: ``--suite recipe`` (default) times the recipes themselves, ``--suite adapters`` bare ViTs per
method. Every row is measured round-robin (method A, B, C, A, B, C, ...) over ``--rounds``, each in a process
of its own, and every ratio (SoRA/full, DINOv3-L/DINOv2-L, ours/PEFT, merged/plain) is taken within a round:
a change in machine load hits all methods of a round alike. Rows report the median over rounds and its range.

    python tools/benchmark.py --device cuda --json recipe.json --md recipe.md          # the recipe suite
    python tools/benchmark.py --device cuda --backbones dinov2-l dinov3-l --methods sora full --skip mfu svd loader slide det
    python tools/benchmark.py --device cpu --reduced --rounds 3 --backbones dinov2-l dinov3-l \\
        --methods sora full frozen lora --skip mfu svd loader slide det                  # CPU ratios, toy size
    python tools/benchmark.py --suite adapters [--device cuda --img 512 --batch 4 --large-img 512]

Recipe sections (``--skip`` leaves some out):
  train   training step (forward + backward + optimizer step through the config's optim wrapper) per backbone
          and method, fp32 and bf16 AMP, without and with gradient checkpointing: s/iter, images/s, peak memory
          (CUDA: max allocated; CPU: resident set size sampled during the steps), trainable parameters.
  mfu     backbone forward + backward FLOPs over the measured time and the GPU's bf16 dense peak (--peak-tflops).
  svd     SoRA's SVD initialisation on DINOv2-L blocks 8-23 (random weights).
  loader  the recipe's train dataloader on generated GTA5-layout data (1914x1052), images/s per worker count.
  slide   sliding-window inference per image at 2048x1024 (the config's test_cfg), fp32 and bf16.
  det     the SoRA DINOv2-L detection config's training step at its crop size and batch.
``--loss-curve N`` trains SoRA N iterations on the generated data in fp32 and bf16 from the same seed (and fp32
from another seed: the run-to-run noise) and writes the curves to the JSON. A CPU measurement runs in a fork
of this (already imported) process, a GPU one in a fresh interpreter. ``--reduced`` shrinks every config to
toy size (4-block ViT of width 64, narrow heads, 64 px crops): every section runs, no figure means anything.
"""
import argparse
import json
import sys
import time

from mmdg.benchmark import adapters, recipe
from mmdg.benchmark.jobs import run_job
from mmdg.benchmark.rounds import run_in_fork, run_in_subprocess
from mmdg.utils.atomic import atomic_open
from mmdg.utils.tool_config import positive_int


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--suite', choices=['recipe', 'adapters'], default='recipe')
    p.add_argument('--device', default=None, help='cuda, cuda:N or cpu (default: recipe cuda, adapters cpu)')
    p.add_argument('--rounds', type=positive_int, default=3, help='round-robin rounds per row (default 3)')
    p.add_argument('--methods', nargs='+', help='default: every method of the suite')
    p.add_argument('--steps', type=positive_int, help='timed steps per measurement (recipe 10, adapters 5)')
    p.add_argument('--warmup', type=int, help='untimed steps first (recipe 3, adapters 2)')
    p.add_argument('--threads', type=int, help="torch CPU threads per measurement (default: torch's own)")
    p.add_argument('--time-budget', type=float, metavar='S', help='start no measurement after S seconds (those '
                   'left are recorded as not run): for a machine lent for a fixed time')
    p.add_argument('--json', help='write the results here (rewritten after every section)')
    p.add_argument('--md', help='write the markdown tables here')
    r = p.add_argument_group('recipe suite')
    r.add_argument('--backbones', nargs='+', default=['dinov2-l'], choices=recipe.BACKBONES,
                   help='DINOv3-L rows cover ' + ', '.join(recipe.DINOV3_METHODS))
    r.add_argument('--reduced', action='store_true', help='toy sizes (a smoke run of every section)')
    r.add_argument('--precisions', nargs='+', default=['fp32', 'bf16'], choices=['fp32', 'bf16'])
    r.add_argument('--grad-ckpt', nargs='+', default=['off', 'on'], choices=['off', 'on'],
                   help="training rows without / with the backbone's gradient checkpointing")
    p.add_argument('--skip', nargs='*', default=[], choices=sorted(set(recipe.SECTIONS) | set(adapters.SECTIONS)),
                   help='sections to leave out: recipe ' + ' '.join(recipe.SECTIONS) + '; adapters '
                        + ' '.join(adapters.SECTIONS))
    r.add_argument('--peak-tflops', type=float, help='bf16 dense peak of the GPU (default: from its name)')
    r.add_argument('--loader-workers', type=int, nargs='+', default=[0, 2, 4, 8, 16],
                   help='worker counts tried (those above the CPU cores are left out)')
    r.add_argument('--loader-images', type=int, help='generated GTA5-layout images (default 32; 8 reduced)')
    r.add_argument('--loader-batches', type=int, help='timed batches per worker count (default 40; 4 reduced)')
    r.add_argument('--loss-curve', type=int, default=0, metavar='N',
                   help='train SoRA N iterations in fp32 and bf16 from the same seed on the generated data')
    r.add_argument('--data-dir', help='where to generate the data (default: a temporary folder, removed)')
    a = p.add_argument_group('adapters suite')
    a.add_argument('--arch', default=adapters.VIT_B, help='timm ViT of the per-method rows and the inference check '
                   '(default: ViT-B, DINOv2-B at patch 16; a smaller one makes a quick smoke run)')
    a.add_argument('--img', type=int, default=112, help='ViT-B input size')
    a.add_argument('--batch', type=int, default=2)
    a.add_argument('--large-img', type=int, default=112, help='ViT-L input size (SoRA vs full, blocks 0-7 frozen)')
    a.add_argument('--large-batch', type=int, default=1)
    args = p.parse_args(argv)
    suite = recipe if args.suite == 'recipe' else adapters
    args.device = args.device or ('cuda' if args.suite == 'recipe' else 'cpu')
    args.methods = args.methods or list(suite.METHODS)
    unknown = [m for m in args.methods if m not in suite.METHODS]
    if unknown:
        p.error(f'--methods {unknown}: the {args.suite} suite has {", ".join(suite.METHODS)}')
    args.steps = args.steps or (10 if args.suite == 'recipe' else 5)
    args.warmup = (3 if args.suite == 'recipe' else 2) if args.warmup is None else args.warmup
    return args


def main(argv=None):
    args = parse_args(argv)
    suite = recipe if args.suite == 'recipe' else adapters
    cpu = not args.device.startswith('cuda')
    if cpu and args.suite == 'recipe':
        recipe.warm_imports()
    started = time.perf_counter()

    def log(msg):
        print(msg, file=sys.stderr, flush=True)

    def run(job):
        if args.time_budget is not None and time.perf_counter() - started > args.time_budget:
            return dict(error=f'not run: the --time-budget of {args.time_budget:.0f} s was spent')
        t = time.perf_counter()
        job = dict(job, threads=args.threads)
        out = run_in_fork(run_job, job) if cpu else run_in_subprocess(job)
        log(f'  {job["kind"]}: {time.perf_counter() - t:.1f} s' + (f', error: {out["error"]}' if 'error' in out else ''))
        return out

    def save(res):
        """The JSON so far, replaced whole: a run stopped midway keeps every section that finished."""
        if args.json:
            with atomic_open(args.json) as f:
                json.dump(res, f, indent=1)

    res = suite.run_suite(args, run, log, save)
    save(res)
    md = suite.report(res)
    if args.md:
        with atomic_open(args.md) as f:
            f.write(md + '\n')
    print(md)


if __name__ == '__main__':
    main()
