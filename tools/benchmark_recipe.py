"""Full-size recipe benchmark: DINOv2-L + Mask2Former at 512 px, batch 4, for every method, built from the
real configs in configs/dg_seg through mmengine's registries (default scope mmdg), trained through the
config's optimizer wrapper (its optimizer and paramwise settings).

    python tools/benchmark_recipe.py --device cuda --json recipe.json --md recipe.md
    python tools/benchmark_recipe.py --device cuda --loss-curve 200 \
        --skip train mfu svd loader slide det
    python tools/benchmark_recipe.py --device cpu --reduced --methods sora frozen     # smoke run, seconds

Sections (``--skip`` leaves some out):
  train   training step (forward + backward + optimizer step through the optim wrapper) per method, fp32
          and bf16 AMP (mmengine's AmpOptimWrapper), each with and without the backbone's gradient
          checkpointing: median step time, images/s, peak memory (CUDA: max allocated; CPU: resident set
          size sampled during the steps), trainable parameters.
  mfu     backbone forward + backward FLOPs (torch.utils.flop_counter, counted once per method) over the
          measured backbone forward + backward time and the GPU's bf16 dense peak (--peak-tflops).
  svd     SoRA's SVD initialisation on DINOv2-L blocks 8-23 (random weights).
  loader  the recipe's train dataloader (its real pipeline) on generated GTA5-layout data (1914x1052),
          images/s per worker count, beside the training step's images/s.
  slide   sliding-window inference per image at 2048x1024 (the config's test_cfg), fp32 and bf16.
  det     the SoRA DINOv2-L detection config's training step at its crop size and batch.
``--loss-curve N`` trains SoRA N iterations on the generated data in fp32 and in bf16 from the same seed
(and fp32 from another seed, the run-to-run noise to compare with) and writes the curves to the JSON.

Every measurement runs in a process of its own so that its peak memory is its own: a fresh subprocess on
a GPU, a fork of the already-imported parent on a CPU (importing mmseg + mmdet costs more than a reduced
measurement). ``--reduced`` shrinks everything (4-block ViT of width 64, a narrow Mask2Former, 64 px
crops, 128x64 data, slide at 256x128) to check that every section runs, not to measure performance.
"""
import argparse
import copy
import json
import os
import os.path as osp
import statistics
import subprocess
import sys
import tempfile
import time
import traceback

from mmdg.adapters import ADAPTERS
from mmdg.utils.profiling import RssSampler, release_freed_heap, sync

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))

#: The two baselines and every linear adapter of the registry (its recipe config is configs/dg_seg/<method>/).
METHODS = ('frozen', 'full', *(n.lower() for n, c in ADAPTERS.items() if c.target_kind == 'linear'))
SECTIONS = ('train', 'mfu', 'svd', 'loader', 'slide', 'det')
SEG_CONFIG = 'configs/dg_seg/{m}/{m}_dinov2-l_mask2former_1xb4-40k_gta5-to-cbm-512x512.py'
DET_CONFIG = 'configs/dg_det/sora/sora_dinov2-l_dino_40k_dwd-1024.py'
#: bf16 dense (no sparsity) peak TFLOP/s, matched against torch.cuda.get_device_name() in this order.
PEAK_TFLOPS = (('H100 PCIe', 756.0), ('H100', 989.0), ('H200', 989.0), ('A100', 312.0))
GTA5_SIZE = (1052, 1914)  # (h, w) of a GTA5 frame
SLIDE_SIZE = (1024, 2048)  # (h, w) of a Cityscapes frame


# ----------------------------------------------------------------------------------------------------
# Configs
def seg_config(method: str, reduced: bool, data_root: str = None):
    from mmengine.config import Config
    cfg = Config.fromfile(osp.join(REPO, SEG_CONFIG.format(m=method)))
    cfg.model.backbone.pretrained = None  # random weights: timing and memory do not depend on them
    if reduced:  # the recipe's structure at toy size (mmdg.testing, as the tests use it)
        from mmdg.testing import toy_data, toy_model
        toy_model(cfg)
        toy_data(cfg, loaders=False)
    if data_root:
        cfg.train_dataloader.dataset.data_root = data_root
    return cfg


def det_config(reduced: bool):
    from mmengine.config import Config
    cfg = Config.fromfile(osp.join(REPO, DET_CONFIG))
    cfg.model.backbone.pretrained = None
    if reduced:
        from mmdg.testing import toy_data, toy_model
        toy_model(cfg)
        toy_data(cfg, loaders=False)
    return cfg


def det_crop(cfg):
    crops = [t.crop_size for t in cfg.train_dataloader.dataset.pipeline if 'RandomCrop' in t.type]
    return tuple(crops[0]) if crops else (1024, 1024)


# ----------------------------------------------------------------------------------------------------
# Helpers run inside a measurement process
def _init(device: str):
    import logging

    import torch
    from mmengine.logging import MMLogger
    from mmengine.registry import init_default_scope
    init_default_scope('mmdg')
    # per-parameter init and paramwise reports: thousands of lines at full size, and slow to print
    MMLogger.get_current_instance().setLevel(logging.ERROR)
    torch.manual_seed(0)
    if device.startswith('cuda'):
        torch.backends.cuda.matmul.allow_tf32 = False  # fp32 means fp32 (the bf16 rows show the fast path)
        torch.backends.cudnn.allow_tf32 = False


def _build(cfg, device: str):
    from mmdg.models.utils import attach_aux_losses
    from mmdg.registry import MODELS
    model = MODELS.build(cfg.model)
    model.init_weights()
    attach_aux_losses(model)  # what AdapterAuxLossHook does in training (CLoRA's SADE loss)
    return model.to(device)


def _optim_wrapper(model, cfg, precision: str, device: str):
    import contextlib

    import torch
    from mmengine.optim import build_optim_wrapper
    ow = copy.deepcopy(cfg.optim_wrapper)
    cpu_bf16 = precision == 'bf16' and not device.startswith('cuda')
    if precision == 'bf16' and not cpu_bf16:
        ow.update(type='AmpOptimWrapper', dtype='bfloat16')
    wrapper = build_optim_wrapper(model, ow)
    if cpu_bf16:  # mmengine's AmpOptimWrapper refuses a CPU: the same bf16 autocast around the forward instead
        plain = wrapper.optim_context

        @contextlib.contextmanager
        def optim_context(module):
            with plain(module), torch.autocast('cpu', dtype=torch.bfloat16):
                yield

        wrapper.optim_context = optim_context
    return wrapper


def _seg_batch(batch: int, h: int, w: int, seed: int = 0):
    """Random images and blocky labels (regions of 32 px, as many classes per image as a street scene)."""
    import torch
    import torch.nn.functional as F
    from mmengine.structures import PixelData
    from mmseg.structures import SegDataSample
    g = torch.Generator().manual_seed(seed)
    inputs, samples = [], []
    for _ in range(batch):
        inputs.append(torch.randint(0, 256, (3, h, w), dtype=torch.uint8, generator=g))
        small = torch.randint(0, 19, (1, 1, -(-h // 32), -(-w // 32)), generator=g).float()
        lab = F.interpolate(small, size=(h, w), mode='nearest')[0].long()
        s = SegDataSample(metainfo=dict(img_shape=(h, w), pad_shape=(h, w), ori_shape=(h, w)))
        s.gt_sem_seg = PixelData(data=lab)
        samples.append(s)
    return dict(inputs=inputs, data_samples=samples)


def _det_batch(batch: int, h: int, w: int, seed: int = 0):
    import torch
    from mmdet.structures import DetDataSample
    from mmengine.structures import InstanceData
    g = torch.Generator().manual_seed(seed)
    inputs, samples = [], []
    for _ in range(batch):
        inputs.append(torch.randint(0, 256, (3, h, w), dtype=torch.uint8, generator=g))
        n = 8
        wh = torch.rand(n, 2, generator=g) * torch.tensor([w / 3, h / 3]) + 4
        xy = torch.rand(n, 2, generator=g) * (torch.tensor([w, h]) - wh)
        s = DetDataSample(metainfo=dict(img_shape=(h, w), ori_shape=(h, w), scale_factor=(1.0, 1.0),
                                        flip=False, flip_direction=None))
        s.gt_instances = InstanceData(bboxes=torch.cat([xy, xy + wh], 1),
                                      labels=torch.randint(0, 7, (n,), generator=g))
        samples.append(s)
    return dict(inputs=inputs, data_samples=samples)


class _Peak:
    """Peak memory of the code inside: CUDA max allocated, or the CPU resident set size sampled."""

    def __init__(self, device):
        self.device, self.mb = device, 0.0

    def __enter__(self):
        import torch
        if self.device.startswith('cuda'):
            torch.cuda.reset_peak_memory_stats()
        else:
            release_freed_heap()  # what model building freed (SVD workspaces) must not count
            self._sampler = RssSampler().__enter__()
        return self

    def __exit__(self, *exc):
        import torch
        if self.device.startswith('cuda'):
            self.mb = torch.cuda.max_memory_allocated() / 2 ** 20
        else:
            self._sampler.__exit__(*exc)
            self.mb = self._sampler.peak


def _timed(fn, device, steps, warmup):
    times = []
    for i in range(warmup + steps):
        sync(device)
        t = time.perf_counter()
        fn()
        sync(device)
        if i >= warmup:
            times.append(time.perf_counter() - t)
    return statistics.median(times)


def _scalar(v) -> float:
    return float(v.detach()) if hasattr(v, 'detach') else float(v)


def _counts(model):
    bb = model.backbone
    return dict(trainable=sum(p.numel() for p in model.parameters() if p.requires_grad),
                backbone_trainable=sum(p.numel() for p in bb.parameters() if p.requires_grad),
                backbone_params=sum(p.numel() for p in bb.parameters()))


# ----------------------------------------------------------------------------------------------------
# Measurements (one per process)
def measure_train(method, precision, grad_ckpt, device, reduced, steps, warmup):
    import math
    _init(device)
    cfg = seg_config(method, reduced)
    cfg.model.backbone.grad_checkpointing = grad_ckpt
    model = _build(cfg, device)
    model.train()
    ow = _optim_wrapper(model, cfg, precision, device)
    batch = cfg.train_dataloader.batch_size
    h, w = cfg.model.data_preprocessor.size
    data = _seg_batch(batch, h, w)
    losses = []
    with _Peak(device) as peak:
        step_s = _timed(lambda: losses.append(_scalar(model.train_step(data, ow)['loss'])), device, steps, warmup)
    if not all(math.isfinite(v) for v in losses):
        raise FloatingPointError(f'non-finite loss {losses}')
    return dict(step_s=step_s, img_s=batch / step_s, peak_mb=peak.mb, batch=batch, crop=[h, w],
                loss=losses[-1], **_counts(model))


def _sdpa_cpu_flops():
    """FlopCounterMode counts the GPU attention kernels but not the CPU one: count it with the same formulas."""
    import torch
    from torch.utils.flop_counter import sdpa_backward_flop_count, sdpa_flop_count
    aten = torch.ops.aten

    def fwd(query, key, value, *args, out_shape=None, **kwargs):
        return sdpa_flop_count(query, key, value)

    def bwd(grad_out, query, key, value, *args, out_shape=None, **kwargs):
        return sdpa_backward_flop_count(grad_out, query, key, value)

    mapping = {}
    if hasattr(aten, '_scaled_dot_product_flash_attention_for_cpu'):
        mapping[aten._scaled_dot_product_flash_attention_for_cpu] = fwd
        mapping[aten._scaled_dot_product_flash_attention_for_cpu_backward] = bwd
    return mapping


def measure_mfu(method, precision, device, reduced, steps, warmup, peak_tflops=None):
    import torch
    from torch.utils.flop_counter import FlopCounterMode
    _init(device)
    cfg = seg_config(method, reduced)
    bb = _build(cfg, device).backbone
    bb.train()
    batch = cfg.train_dataloader.batch_size
    h, w = cfg.model.data_preprocessor.size
    x = torch.randn(batch, 3, h, w, device=device)
    dev_type = 'cuda' if device.startswith('cuda') else 'cpu'

    def fwd_bwd():
        with torch.autocast(dev_type, dtype=torch.bfloat16, enabled=precision == 'bf16'):
            loss = sum(f.float().mean() for f in bb(x))
        if loss.requires_grad:  # a frozen backbone has no backward pass
            loss.backward()
        bb.zero_grad(set_to_none=True)

    with FlopCounterMode(display=False, custom_mapping=_sdpa_cpu_flops()) as counter:
        fwd_bwd()
    flops = counter.get_total_flops()
    secs = _timed(fwd_bwd, device, steps, warmup)
    out = dict(precision=precision, flops=flops, fwd_bwd_s=secs, achieved_tflops=flops / secs / 1e12,
               achieved_gflops=flops / secs / 1e9, batch=batch, crop=[h, w])
    if peak_tflops:
        out.update(peak_tflops=peak_tflops, mfu=flops / secs / 1e12 / peak_tflops)
    return out


def measure_svd(device, reduced):
    """Cold: the process's first SVDs (the linear-algebra libraries load then, as at a training start);
    warm: the same injection again into an identical fresh ViT."""
    from mmdg.adapters import inject_adapters
    from mmdg.registry import MODELS
    _init(device)
    cfg = seg_config('sora', reduced)
    bb_cfg = copy.deepcopy(cfg.model.backbone)
    adapter = bb_cfg.pop('adapter').to_dict()
    vit = MODELS.build(bb_cfg).vit.to(device)
    spare = copy.deepcopy(vit)
    secs = []
    for v in (vit, spare):
        sync(device)
        t = time.perf_counter()
        inject_adapters(v, copy.deepcopy(adapter))
        sync(device)
        secs.append(time.perf_counter() - t)
    lo, hi = adapter['blocks']
    return dict(svd_init_s=secs[1], svd_init_cold_s=secs[0], blocks=[lo, hi - 1], depth=len(vit.blocks),
                embed_dim=vit.embed_dim)


def _write_gta5_one(job):
    import cv2
    from mmdg.datasets.synthetic import make_sample
    root, i, size = job
    img, lab, _ = make_sample('source', 'train', i, size)  # GTA5 is the synthetic source style
    cv2.imwrite(osp.join(root, 'images', f'{i + 1:05d}.png'), img[..., ::-1])
    cv2.imwrite(osp.join(root, 'labels', f'{i + 1:05d}_labelTrainIds.png'), lab)


def generate_gta5(root, n, size, workers):
    """GTA5's converted layout (images/*.png, labels/*_labelTrainIds.png) with mmdg's procedural scenes."""
    from multiprocessing import Pool
    for sub in ('images', 'labels'):
        os.makedirs(osp.join(root, sub), exist_ok=True)
    t = time.perf_counter()
    jobs = [(root, i, tuple(size)) for i in range(n)]
    if workers > 1:
        with Pool(workers) as pool:
            pool.map(_write_gta5_one, jobs)
    else:
        for j in jobs:
            _write_gta5_one(j)
    return dict(root=root, images=n, size_hw=list(size), generate_s=time.perf_counter() - t)


def _loader(cfg, workers, device, seed=0):
    from mmengine.runner import Runner
    dl = copy.deepcopy(cfg.train_dataloader)
    # one endless epoch (InfiniteSampler): persistent workers would change nothing but outlive the measurement
    dl.update(num_workers=workers, persistent_workers=False, pin_memory=device.startswith('cuda'))
    return Runner.build_dataloader(dl.to_dict() if hasattr(dl, 'to_dict') else dict(dl), seed=seed)


def measure_loader(device, reduced, data_root, workers, batches):
    _init(device)
    cfg = seg_config('sora', reduced, data_root)
    loader = _loader(cfg, workers, device)
    it = iter(loader)
    for _ in range(max(1, 2 * workers)):  # worker start-up and the prefetched batches
        next(it)
    t = time.perf_counter()
    for _ in range(batches):
        next(it)
    secs = time.perf_counter() - t
    del it  # stop the workers before this process ends
    return dict(workers=workers, batches=batches, batch=loader.batch_size,
                img_s=batches * loader.batch_size / secs)


def measure_slide(method, precision, device, reduced, steps, warmup):
    import torch
    from mmseg.structures import SegDataSample
    _init(device)
    cfg = seg_config(method, reduced)
    model = _build(cfg, device).eval()
    h, w = (128, 256) if reduced else SLIDE_SIZE
    img = torch.randint(0, 256, (3, h, w), dtype=torch.uint8)
    sample = SegDataSample(metainfo=dict(img_shape=(h, w), ori_shape=(h, w), pad_shape=(h, w)))
    data = dict(inputs=[img], data_samples=[sample])
    dev_type = 'cuda' if device.startswith('cuda') else 'cpu'

    def run():
        with torch.no_grad(), torch.autocast(dev_type, dtype=torch.bfloat16, enabled=precision == 'bf16'):
            out = model.test_step(data)
        assert out[0].pred_sem_seg.data.shape[-2:] == (h, w)

    with _Peak(device) as peak:
        secs = _timed(run, device, steps, warmup)
    return dict(s_per_img=secs, peak_mb=peak.mb, image_hw=[h, w], test_cfg=dict(cfg.model.test_cfg))


def measure_det(precision, device, reduced, steps, warmup):
    import math
    _init(device)
    cfg = det_config(reduced)
    model = _build(cfg, device)
    model.train()
    ow = _optim_wrapper(model, cfg, precision, device)
    batch = cfg.train_dataloader.batch_size
    h, w = det_crop(cfg)
    data = _det_batch(batch, h, w)
    losses = []
    with _Peak(device) as peak:
        step_s = _timed(lambda: losses.append(_scalar(model.train_step(data, ow)['loss'])), device, steps, warmup)
    if not all(math.isfinite(v) for v in losses):
        raise FloatingPointError(f'non-finite loss {losses}')
    return dict(config=DET_CONFIG, detector=cfg.model.type, step_s=step_s, img_s=batch / step_s, peak_mb=peak.mb,
                batch=batch, crop=[h, w], **_counts(model))


def measure_loss_curve(precision, seed, iters, device, reduced, data_root, workers):
    import torch
    from mmengine.runner import set_random_seed
    _init(device)
    set_random_seed(seed, deterministic=False)
    cfg = seg_config('sora', reduced, data_root)
    model = _build(cfg, device)
    model.train()
    ow = _optim_wrapper(model, cfg, precision, device)
    it = iter(_loader(cfg, workers, device, seed=seed))
    losses = []
    for _ in range(iters):  # the config's lr without its schedule: poly decay is < 0.5 % over 200 of 40k
        losses.append(_scalar(model.train_step(next(it), ow)['loss']))
    del it
    return dict(precision=precision, seed=seed, losses=losses, finite=bool(torch.isfinite(torch.tensor(losses)).all()))


MEASURES = dict(train=measure_train, mfu=measure_mfu, svd=measure_svd, loader=measure_loader, slide=measure_slide,
                det=measure_det, gen=generate_gta5, loss_curve=measure_loss_curve)


# ----------------------------------------------------------------------------------------------------
# Running measurements in processes of their own
def _run_job(job: dict) -> dict:
    job = dict(job)
    threads = job.pop('threads', None)
    if threads:
        import torch
        torch.set_num_threads(threads)
    return MEASURES[job.pop('kind')](**job)


def _in_fork(job: dict) -> dict:
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: measure, send the JSON back, leave without the parent's clean-up
        os.close(r)
        try:
            out = json.dumps(_run_job(job))
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


def _in_subprocess(job: dict) -> dict:
    res = subprocess.run([sys.executable, osp.abspath(__file__), '--child', json.dumps(job)],
                         capture_output=True, text=True, cwd=REPO)
    if res.returncode:
        sys.stderr.write(res.stderr[-3000:])
        return dict(error=(res.stderr.strip().splitlines() or ['failed'])[-1][:300])
    return json.loads(res.stdout.strip().splitlines()[-1])


def _warm_imports():
    """What every CPU measurement needs, imported once before forking (no CUDA is touched here)."""
    import mmdet.models  # noqa: F401
    import mmseg.models  # noqa: F401
    from mmengine.registry import init_default_scope
    import mmdg.datasets  # noqa: F401
    import mmdg.engine  # noqa: F401
    import mmdg.models  # noqa: F401
    init_default_scope('mmdg')


def environment(device: str) -> dict:
    import torch
    env = dict(torch=torch.__version__, cuda=torch.version.cuda, cpu_cores=_cores())
    if device.startswith('cuda'):
        env['device'] = torch.cuda.get_device_name(device)
    else:
        env['device'] = f'CPU, {_cores()} cores'
    return env


def _cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, 'sched_getaffinity') else os.cpu_count()


def default_peak_tflops(device_name: str):
    for key, tflops in PEAK_TFLOPS:
        if key.lower() in device_name.lower():
            return tflops
    return None


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--device', default='cuda', help='cuda, cuda:N or cpu')
    p.add_argument('--reduced', action='store_true', help='toy sizes (a smoke run of every section)')
    p.add_argument('--methods', nargs='+', default=list(METHODS), choices=METHODS)
    p.add_argument('--steps', type=int, default=10, help='timed steps (medians)')
    p.add_argument('--warmup', type=int, default=3)
    p.add_argument('--precisions', nargs='+', default=['fp32', 'bf16'], choices=['fp32', 'bf16'])
    p.add_argument('--grad-ckpt', nargs='+', default=['off', 'on'], choices=['off', 'on'],
                   help="training rows without / with the backbone's gradient checkpointing")
    p.add_argument('--skip', nargs='*', default=[], choices=SECTIONS)
    p.add_argument('--peak-tflops', type=float, help='bf16 dense peak of the GPU (default: from its name)')
    p.add_argument('--loader-workers', type=int, nargs='+', default=[0, 2, 4, 8, 16],
                   help='worker counts tried (those above the CPU cores are left out)')
    p.add_argument('--loader-images', type=int, help='generated GTA5-layout images (default 32; 8 reduced)')
    p.add_argument('--loader-batches', type=int, help='timed batches per worker count (default 40; 4 reduced)')
    p.add_argument('--loss-curve', type=int, default=0, metavar='N',
                   help='train SoRA N iterations in fp32 and bf16 from the same seed on the generated data')
    p.add_argument('--data-dir', help='where to generate the data (default: a temporary folder, removed)')
    p.add_argument('--threads', type=int, help='torch CPU threads per measurement (default: torch\'s own; 1 '
                   'keeps a reduced run on a busy CPU from stalling on thread synchronisation)')
    p.add_argument('--time-budget', type=float, metavar='S',
                   help='start no measurement after S seconds (those left are recorded as not run): for a '
                   'machine lent for a fixed time')
    p.add_argument('--json', help='write the results here (rewritten after every measurement)')
    p.add_argument('--md', help='write the markdown tables here')
    p.add_argument('--child', help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        print(json.dumps(_run_job(json.loads(args.child))))
        return

    cpu = not args.device.startswith('cuda')
    if cpu:
        _warm_imports()
    runner = _in_fork if cpu else _in_subprocess

    env = environment(args.device)
    env['torch_threads'] = args.threads or 'default'
    peak = args.peak_tflops or (None if cpu else default_peak_tflops(env['device']))
    common = dict(device=args.device, reduced=args.reduced)
    timing = dict(common, steps=args.steps, warmup=args.warmup)
    res = dict(env=env, args={k: v for k, v in vars(args).items() if k != 'child'}, peak_tflops=peak)
    started = time.perf_counter()

    def save():
        """The JSON so far, replaced whole: a run stopped midway keeps every measurement that finished."""
        if args.json:
            with open(args.json + '.part', 'w') as f:
                json.dump(res, f, indent=1)
            os.replace(args.json + '.part', args.json)

    def run(job):
        save()
        t = time.perf_counter()
        if args.time_budget is not None and t - started > args.time_budget:
            out = dict(error=f'not run: the --time-budget of {args.time_budget:.0f} s was spent')
        else:
            out = runner(dict(job, threads=args.threads))
        log(f'  {time.perf_counter() - t:.1f} s' + (f', error: {out["error"]}' if 'error' in out else ''))
        return out

    def log(msg):
        print(msg, file=sys.stderr, flush=True)

    if 'train' not in args.skip:
        res['train'] = {}
        for m in args.methods:
            res['train'][m] = {}
            for prec in args.precisions:
                for ck in args.grad_ckpt:
                    key = prec + ('+ckpt' if ck == 'on' else '')
                    log(f'train {m} {key} ...')
                    res['train'][m][key] = run(dict(kind='train', method=m, precision=prec, grad_ckpt=ck == 'on',
                                                    **timing))
    if 'mfu' not in args.skip:
        res['mfu'] = {}
        for m in args.methods:
            log(f'backbone FLOPs and fwd+bwd time {m} ...')
            res['mfu'][m] = run(dict(kind='mfu', method=m, precision='fp32' if cpu else 'bf16', peak_tflops=peak,
                                     **timing))
    if 'svd' not in args.skip:
        log('SoRA SVD initialisation ...')
        res['svd'] = run(dict(kind='svd', **common))

    need_data = 'loader' not in args.skip or args.loss_curve
    tmp = None
    if need_data:
        root = args.data_dir
        if not root:
            tmp = tempfile.TemporaryDirectory(prefix='mmdg_recipe_bench_')
            root = tmp.name
        n = args.loader_images or (8 if args.reduced else 32)
        size = (64, 128) if args.reduced else GTA5_SIZE
        log(f'generating {n} GTA5-layout images of {size[1]}x{size[0]} ...')
        res['data'] = run(dict(kind='gen', root=root, n=n, size=size, workers=min(_cores(), 16)))
    try:
        if 'loader' not in args.skip:
            res['loader'] = {}
            batches = args.loader_batches or (4 if args.reduced else 40)
            for nw in [w for w in args.loader_workers if w <= _cores()]:
                log(f'data loader, {nw} workers ...')
                res['loader'][str(nw)] = run(dict(kind='loader', data_root=root, workers=nw, batches=batches,
                                                  **common))
        if args.loss_curve:
            res['loss_curve'] = {}
            workers = min(4, _cores())
            for name, prec, seed in (('fp32', 'fp32', 0), ('bf16', 'bf16', 0), ('fp32_seed1', 'fp32', 1)):
                log(f'loss curve {name}, {args.loss_curve} iterations ...')
                res['loss_curve'][name] = run(dict(kind='loss_curve', precision=prec, seed=seed,
                                                   iters=args.loss_curve, data_root=root, workers=workers, **common))
            res['loss_curve']['summary'] = loss_curve_summary(res['loss_curve'])
    finally:
        if tmp is not None:
            tmp.cleanup()
    if 'slide' not in args.skip:
        res['slide'] = {}
        for m in args.methods:
            res['slide'][m] = {}
            for prec in args.precisions:
                log(f'slide inference {m} {prec} ...')
                res['slide'][m][prec] = run(dict(kind='slide', method=m, precision=prec, **timing))
    if 'det' not in args.skip:
        res['det'] = {}
        for prec in args.precisions:
            log(f'detection {prec} ...')
            res['det'][prec] = run(dict(kind='det', precision=prec, **timing))

    save()
    md = report(res)
    if args.md:
        with open(args.md, 'w') as f:
            f.write(md + '\n')
    print(md)


def loss_curve_summary(curves: dict) -> dict:
    """Mean |difference| of the bf16 and of a reseeded fp32 curve from the fp32 one (moving average of 10)."""
    def smooth(xs, k=10):
        return [sum(xs[max(0, i - k + 1):i + 1]) / len(xs[max(0, i - k + 1):i + 1]) for i in range(len(xs))]

    if any('error' in curves[k] for k in ('fp32', 'bf16', 'fp32_seed1')):
        return dict(error='a curve failed')
    ref = smooth(curves['fp32']['losses'])

    def gap(name):
        other = smooth(curves[name]['losses'])
        return sum(abs(a - b) for a, b in zip(ref, other)) / len(ref)

    return dict(bf16_vs_fp32=gap('bf16'), fp32_seed1_vs_fp32=gap('fp32_seed1'),
                final_fp32=ref[-1], final_bf16=smooth(curves['bf16']['losses'])[-1])


# ----------------------------------------------------------------------------------------------------
# Markdown
def _f(x, fmt='{:.3f}'):
    return '-' if x is None else fmt.format(x)


def report(res: dict) -> str:
    env, a = res['env'], res['args']
    size = 'REDUCED sizes (smoke run, not a performance figure)' if a['reduced'] else 'full size'
    lines = [f'Run: {env["device"]}, torch {env["torch"]}, CUDA {env["cuda"]}; {size}; '
             f'median of {a["steps"]} steps after {a["warmup"]} warm-up.', '']
    train = res.get('train', {})
    if train:
        lines += ['| method | trainable (backbone) | precision | s/iter | img/s | peak MB | s/iter, grad ckpt '
                  '| peak MB, grad ckpt |', '|---|---:|---|---:|---:|---:|---:|---:|']
        for m, rows in train.items():
            for prec in a['precisions']:
                r, c = rows.get(prec, {}), rows.get(prec + '+ckpt', {})
                ref = r if 'trainable' in r else c
                if 'error' in r or 'error' in c:
                    lines.append(f'| {m} | | {prec} | error: {(r.get("error") or c.get("error"))[:80]} | | | | |')
                    continue
                lines.append(f'| {m} | {ref.get("trainable", 0):,} ({ref.get("backbone_trainable", 0):,}) | {prec} '
                             f'| {_f(r.get("step_s"))} | {_f(r.get("img_s"), "{:.1f}")} '
                             f'| {_f(r.get("peak_mb"), "{:.0f}")} '
                             f'| {_f(c.get("step_s"))} | {_f(c.get("peak_mb"), "{:.0f}")} |')
        lines.append('')
        sora = train.get('sora', {}).get('bf16', {})
        if 'step_s' in sora and not a['reduced']:
            hours = 40000 * sora['step_s'] / 3600
            lines.append(f'SoRA bf16: {sora["step_s"]:.3f} s/iter -> 40k iterations in {hours:.1f} h '
                         '(target <= 3 h, i.e. <= 0.27 s/iter, on one H100).')
            lines.append('')
    mfu = res.get('mfu', {})
    if mfu:
        unit = 'GFLOP/s' if env['device'].startswith('CPU') else 'TFLOP/s'
        lines += [f'| method | backbone fwd+bwd GFLOP | precision | fwd+bwd s | achieved {unit} | MFU |',
                  '|---|---:|---|---:|---:|---:|']
        for m, r in mfu.items():
            if 'error' in r:
                lines.append(f'| {m} | error: {r["error"][:80]} | | | | |')
                continue
            lines.append(f'| {m} | {r["flops"] / 1e9:,.4g} | {r["precision"]} | {r["fwd_bwd_s"]:.4f} '
                         f'| {r["achieved_gflops"] if unit == "GFLOP/s" else r["achieved_tflops"]:,.3g} '
                         f'| {_f(r.get("mfu"), "{:.1%}")} |')
        lines += ['', f'MFU against a bf16 dense peak of {_f(res.get("peak_tflops"), "{:.0f}")} TFLOP/s '
                  '(target >= 40 %; "-": no GPU peak, achieved FLOP/s only).', '']
    svd = res.get('svd')
    if svd:
        lines.append(f'SoRA SVD initialisation (blocks {svd.get("blocks")}, width {svd.get("embed_dim")}): '
                     f'{_f(svd.get("svd_init_s"), "{:.2f}")} s, {_f(svd.get("svd_init_cold_s"), "{:.2f}")} s as the '
                     "process's first linear algebra (target <= 5 s for DINOv2-L on the GPU)."
                     if 'error' not in svd else f'SoRA SVD initialisation: error {svd["error"]}')
        lines.append('')
    loader = res.get('loader', {})
    if loader:
        step = train.get('sora', {}).get('bf16', {}).get('img_s')
        d = res.get('data', {})
        lines += [f'Data loader: the recipe\'s train pipeline on {d.get("images")} generated GTA5-layout images of '
                  f'{d.get("size_hw", [0, 0])[1]}x{d.get("size_hw", [0, 0])[0]}; SoRA bf16 training step: '
                  f'{_f(step, "{:.1f}")} img/s.', '', '| workers | loader img/s | loader / step |', '|---:|---:|---:|']
        for nw, r in loader.items():
            if 'error' in r:
                lines.append(f'| {nw} | error: {r["error"][:80]} | |')
                continue
            lines.append(f'| {nw} | {r["img_s"]:.1f} | {_f(r["img_s"] / step if step else None, "{:.2f}")} |')
        lines += ['', 'loader / step >= 1: the GPU does not wait for data.', '']
    slide = res.get('slide', {})
    if slide:
        hw = next((r['image_hw'] for rows in slide.values() for r in rows.values() if 'image_hw' in r), [0, 0])
        lines += [f'Slide inference, one {hw[1]}x{hw[0]} image (the config\'s test_cfg):', '',
                  '| method | ' + ' | '.join(f'{p} s/img | {p} peak MB' for p in a['precisions']) + ' |',
                  '|---|' + '---:|---:|' * len(a['precisions'])]
        for m, rows in slide.items():
            cells = []
            for p in a['precisions']:
                r = rows.get(p, {})
                cells += ([f'error: {r["error"][:60]}', ''] if 'error' in r else
                          [_f(r.get('s_per_img')), _f(r.get('peak_mb'), '{:.0f}')])
            lines.append(f'| {m} | ' + ' | '.join(cells) + ' |')
        lines.append('')
    det = res.get('det', {})
    if det:
        lines += ['| detection config | detector | crop | batch | precision | s/iter | img/s | peak MB |',
                  '|---|---|---|---:|---|---:|---:|---:|']
        for prec, r in det.items():
            if 'error' in r:
                lines.append(f'| `{DET_CONFIG}` | | | | {prec} | error: {r["error"][:80]} | | |')
                continue
            lines.append(f'| `{osp.basename(r["config"])}` | {r["detector"]} | {r["crop"][1]}x{r["crop"][0]} '
                         f'| {r["batch"]} | {prec} | {r["step_s"]:.3f} | {r["img_s"]:.1f} | {r["peak_mb"]:.0f} |')
        lines.append('')
    lc = res.get('loss_curve', {}).get('summary')
    if lc:
        lines.append('Loss curve (SoRA, generated data): ' + (
            f'mean |bf16 - fp32| {lc["bf16_vs_fp32"]:.4f} vs. run-to-run (fp32, another seed) '
            f'{lc["fp32_seed1_vs_fp32"]:.4f}; final (moving average of 10) fp32 {lc["final_fp32"]:.3f}, '
            f'bf16 {lc["final_bf16"]:.3f}.' if 'error' not in lc else lc['error']))
    return '\n'.join(lines).rstrip()


if __name__ == '__main__':
    main()
