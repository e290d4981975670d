"""The recipe suite: DINOv2-L (and DINOv3-L) + Mask2Former at 512 px, batch 4, built from the real configs in
configs/dg_seg through mmengine's registries (default scope mmdg), trained through the config's optimizer
wrapper (its optimizer and paramwise settings); the SoRA detection config; the data loader; SoRA's SVD; loss
curves in fp32 and bf16. ``tools/benchmark.py --suite recipe`` runs it (sections and options there).

Each ``measure_*`` runs in a process of its own (:mod:`mmdg.benchmark.rounds`): a fork of the warm parent on a
CPU, a fresh interpreter on a GPU. ``reduced`` shrinks every config to toy size (:mod:`mmdg.testing`) to check
that every section runs, not to measure performance.
"""
import copy
import glob
import os
import os.path as osp
import statistics
import time

from mmdg.adapters import ADAPTERS
from mmdg.utils.profiling import RssSampler, release_freed_heap, sync

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))

#: The two baselines and every linear adapter of the registry (its recipe config is configs/dg_seg/<method>/).
METHODS = ('frozen', 'full', *(n.lower() for n, c in ADAPTERS.items() if c.target_kind == 'linear'))
#: Backbones with recipe configs; DINOv3-L has them for the methods in DINOV3_METHODS.
BACKBONES = ('dinov2-l', 'dinov3-l')
DINOV3_METHODS = ('frozen', 'full', 'lora', 'sora')
SECTIONS = ('train', 'mfu', 'svd', 'loader', 'slide', 'det')
SEG_CONFIG = 'configs/dg_seg/{m}/{m}_{backbone}_mask2former_1xb4-40k_gta5-to-cbm-512x512.py'
DET_CONFIG = 'configs/dg_det/sora/sora_dinov2-l_dino_4xb2-40k_dwd-1024.py'
#: bf16 dense (no sparsity) peak TFLOP/s, matched against torch.cuda.get_device_name() in this order.
PEAK_TFLOPS = (('H100 PCIe', 756.0), ('H100', 989.0), ('H200', 989.0), ('A100', 312.0))
GTA5_SIZE = (1052, 1914)  # (h, w) of a GTA5 frame
SLIDE_SIZE = (1024, 2048)  # (h, w) of a Cityscapes frame


# ----------------------------------------------------------------------------------------------------
# Configs
def seg_config(method: str, reduced: bool, data_root: str = None, backbone: str = 'dinov2-l'):
    from mmengine.config import Config
    pattern = SEG_CONFIG.format(m=method, backbone=backbone)
    found = sorted(glob.glob(osp.join(REPO, pattern)))
    if not found:
        raise FileNotFoundError(f'no recipe config {pattern} ({method} on {backbone})')
    cfg = Config.fromfile(found[0])
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
def measure_train(method, precision, grad_ckpt, device, reduced, steps, warmup, backbone='dinov2-l'):
    _init(device)
    cfg = seg_config(method, reduced, backbone=backbone)
    cfg.model.backbone.grad_checkpointing = grad_ckpt
    h, w = cfg.model.data_preprocessor.size
    return _train_steps(cfg, precision, device, steps, warmup, _seg_batch, (h, w))


def _train_steps(cfg, precision, device, steps, warmup, make_batch, crop) -> dict:
    """The config's model trained on one fixed random batch through its optim wrapper: the median step time,
    peak memory and parameter counts; a non-finite loss is an error."""
    import math
    model = _build(cfg, device)
    model.train()
    ow = _optim_wrapper(model, cfg, precision, device)
    batch = cfg.train_dataloader.batch_size
    data = make_batch(batch, *crop)
    losses = []
    with _Peak(device) as peak:
        step_s = _timed(lambda: losses.append(_scalar(model.train_step(data, ow)['loss'])), device, steps, warmup)
    if not all(math.isfinite(v) for v in losses):
        raise FloatingPointError(f'non-finite loss {losses}')
    return dict(step_s=step_s, img_s=batch / step_s, peak_mb=peak.mb, batch=batch, crop=list(crop),
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


def measure_mfu(method, precision, device, reduced, steps, warmup, peak_tflops=None, backbone='dinov2-l'):
    import torch
    from torch.utils.flop_counter import FlopCounterMode
    _init(device)
    cfg = seg_config(method, reduced, backbone=backbone)
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


def measure_slide(method, precision, device, reduced, steps, warmup, backbone='dinov2-l'):
    import torch
    from mmseg.structures import SegDataSample
    _init(device)
    cfg = seg_config(method, reduced, backbone=backbone)
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
    _init(device)
    cfg = det_config(reduced)
    out = _train_steps(cfg, precision, device, steps, warmup, _det_batch, det_crop(cfg))
    return dict(out, config=DET_CONFIG, detector=cfg.model.type)


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
# The suite: every section round-robin over its rows
def environment(device: str) -> dict:
    import torch
    env = dict(torch=torch.__version__, cuda=torch.version.cuda, cpu_cores=cores())
    env['device'] = torch.cuda.get_device_name(device) if device.startswith('cuda') else f'CPU, {cores()} cores'
    return env


def cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, 'sched_getaffinity') else os.cpu_count()


def default_peak_tflops(device_name: str):
    for key, tflops in PEAK_TFLOPS:
        if key.lower() in device_name.lower():
            return tflops
    return None


def warm_imports():
    """What every CPU measurement needs, imported once before forking (no CUDA is touched here)."""
    import mmdet.models  # noqa: F401
    import mmseg.models  # noqa: F401
    from mmengine.registry import init_default_scope

    import mmdg.datasets  # noqa: F401
    import mmdg.engine  # noqa: F401
    import mmdg.models  # noqa: F401
    init_default_scope('mmdg')


def methods_of(backbone: str, methods) -> list:
    return [m for m in methods if backbone == 'dinov2-l' or m in DINOV3_METHODS]


def _nest(flat: dict) -> dict:
    """``{(a, b, c): x}`` -> ``{a: {b: {c: x}}}``."""
    out = {}
    for key, value in flat.items():
        node = out
        for k in key[:-1]:
            node = node.setdefault(k, {})
        node[key[-1]] = value
    return out


def run_suite(o, run, log, save) -> dict:
    """Every section of ``o`` (the parsed options of ``tools/benchmark.py --suite recipe``), each row measured
    by ``run(job)`` round-robin over ``o.rounds`` rounds; ``save(res)`` after every section."""
    import tempfile

    from mmdg.benchmark.rounds import paired_ratio, round_robin, summarize
    cpu = not o.device.startswith('cuda')
    env = environment(o.device)
    env['torch_threads'] = o.threads or 'default'
    peak = o.peak_tflops or (None if cpu else default_peak_tflops(env['device']))
    common = dict(device=o.device, reduced=o.reduced)
    timing = dict(common, steps=o.steps, warmup=o.warmup)
    res = dict(env=env, args={k: v for k, v in vars(o).items()}, peak_tflops=peak)

    def rows(keys, make_job, rounds=o.rounds):
        return round_robin(keys, make_job, rounds, run, log)

    if 'train' not in o.skip:
        keys = [(bb, m, p + ('+ckpt' if ck == 'on' else '')) for bb in o.backbones for m in methods_of(bb, o.methods)
                for p in o.precisions for ck in o.grad_ckpt]
        raw = rows(keys, lambda k: dict(kind='train', backbone=k[0], method=k[1], precision=k[2].split('+')[0],
                                        grad_ckpt=k[2].endswith('+ckpt'), **timing))
        res['train'] = _nest({k: summarize(v) for k, v in raw.items()})
        ratios = {}
        for bb, m, key in keys:  # every ratio from the same rounds: SoRA vs full / frozen, DINOv3-L vs DINOv2-L
            for other in ('full', 'frozen'):
                if m == 'sora' and (bb, other, key) in raw:
                    ratios[(bb, key, f'sora/{other}')] = {f: paired_ratio(raw[(bb, m, key)], raw[(bb, other, key)], f)
                                                          for f in ('step_s', 'peak_mb')}
            if bb != 'dinov2-l' and ('dinov2-l', m, key) in raw:
                ratios[(bb, key, f'{m}: {bb}/dinov2-l')] = {
                    f: paired_ratio(raw[(bb, m, key)], raw[('dinov2-l', m, key)], f) for f in ('step_s', 'peak_mb')}
        res['ratios'] = _nest(ratios)
        save(res)
    if 'mfu' not in o.skip:
        keys = [(bb, m) for bb in o.backbones for m in methods_of(bb, o.methods)]
        raw = rows(keys, lambda k: dict(kind='mfu', backbone=k[0], method=k[1], precision='fp32' if cpu else 'bf16',
                                        peak_tflops=peak, **timing))
        res['mfu'] = _nest({k: summarize(v) for k, v in raw.items()})
        save(res)
    if 'svd' not in o.skip:
        res['svd'] = summarize(rows(['svd'], lambda k: dict(kind='svd', **common))['svd'])
        save(res)
    tmp = None
    if 'loader' not in o.skip or o.loss_curve:
        root = o.data_dir
        if not root:
            tmp = tempfile.TemporaryDirectory(prefix='mmdg_recipe_bench_')
            root = tmp.name
        n = o.loader_images or (8 if o.reduced else 32)
        size = (64, 128) if o.reduced else GTA5_SIZE
        log(f'generating {n} GTA5-layout images of {size[1]}x{size[0]} ...')
        res['data'] = run(dict(kind='gen', root=root, n=n, size=size, workers=min(cores(), 16)))
    try:
        if 'loader' not in o.skip:
            batches = o.loader_batches or (4 if o.reduced else 40)
            keys = [str(w) for w in o.loader_workers if w <= cores()]
            raw = rows(keys, lambda k: dict(kind='loader', data_root=root, workers=int(k), batches=batches, **common))
            res['loader'] = {k: summarize(v) for k, v in raw.items()}
            save(res)
        if o.loss_curve:  # one run per curve: a curve is its own repetition
            res['loss_curve'] = {}
            for name, prec, seed in (('fp32', 'fp32', 0), ('bf16', 'bf16', 0), ('fp32_seed1', 'fp32', 1)):
                log(f'loss curve {name}, {o.loss_curve} iterations ...')
                res['loss_curve'][name] = run(dict(kind='loss_curve', precision=prec, seed=seed, iters=o.loss_curve,
                                                   data_root=root, workers=min(4, cores()), **common))
            res['loss_curve']['summary'] = loss_curve_summary(res['loss_curve'])
            save(res)
    finally:
        if tmp is not None:
            tmp.cleanup()
    if 'slide' not in o.skip:
        keys = [(bb, m, p) for bb in o.backbones for m in methods_of(bb, o.methods) for p in o.precisions]
        raw = rows(keys, lambda k: dict(kind='slide', backbone=k[0], method=k[1], precision=k[2], **timing))
        res['slide'] = _nest({k: summarize(v) for k, v in raw.items()})
        save(res)
    if 'det' not in o.skip:
        raw = rows(list(o.precisions), lambda k: dict(kind='det', precision=k, **timing))
        res['det'] = {k: summarize(v) for k, v in raw.items()}
        save(res)
    return res


# ----------------------------------------------------------------------------------------------------
# Markdown
def _f(x, fmt='{:.3f}'):
    return '-' if x is None else fmt.format(x)


def _spread(r: dict, key: str, fmt: str = '{:.3f}') -> str:
    """``median (min-max)`` over rounds, or the median alone when the rounds agree or there was one."""
    lo_hi = r.get(f'{key}_range')
    return _f(r.get(key), fmt) + (f' ({fmt.format(lo_hi[0])}-{fmt.format(lo_hi[1])})' if lo_hi else '')


def report(res: dict) -> str:
    env, a = res['env'], res['args']
    size = 'REDUCED sizes (smoke run, not a performance figure)' if a['reduced'] else 'full size'
    lines = [f'Run: {env["device"]}, torch {env["torch"]}, CUDA {env["cuda"]}; {size}; per row the median '
             f'over {a["rounds"]} round(s) (range in brackets) of each round\'s median of {a["steps"]} steps after '
             f'{a["warmup"]} warm-up; the rows of a table were measured round-robin.', '']
    train = res.get('train', {})
    if train:
        lines += ['| backbone | method | trainable (backbone) | precision | s/iter | img/s | peak MB | s/iter, grad ckpt '
                  '| peak MB, grad ckpt |', '|---|---|---:|---|---:|---:|---:|---:|---:|']
        for bb, methods in train.items():
            for m, rows in methods.items():
                for prec in a['precisions']:
                    r, c = rows.get(prec, {}), rows.get(prec + '+ckpt', {})
                    ref = r if 'trainable' in r else c
                    if 'error' in r or 'error' in c:
                        lines.append(f'| {bb} | {m} | | {prec} | error: {(r.get("error") or c.get("error"))[:80]} '
                                     '| | | | |')
                        continue
                    lines.append(f'| {bb} | {m} | {ref.get("trainable", 0):,} ({ref.get("backbone_trainable", 0):,}) '
                                 f'| {prec} | {_spread(r, "step_s")} | {_f(r.get("img_s"), "{:.1f}")} '
                                 f'| {_f(r.get("peak_mb"), "{:.0f}")} '
                                 f'| {_spread(c, "step_s")} | {_f(c.get("peak_mb"), "{:.0f}")} |')
        lines.append('')
        for bb, keys in res.get('ratios', {}).items():
            for key, pairs in keys.items():
                for name, fields in pairs.items():
                    t, mem = fields.get('step_s') or {}, fields.get('peak_mb') or {}
                    if t:
                        lines.append(f'- {bb} {key}, {name}: step time **{t["median"]:.2f}** '
                                     f'({t["range"][0]:.2f}-{t["range"][1]:.2f} over {t["rounds"]} rounds)'
                                     + (f', peak memory **{mem["median"]:.2f}**' if mem else ''))
        lines.append('')
        sora = train.get('dinov2-l', {}).get('sora', {}).get('bf16', {})
        if 'step_s' in sora and not a['reduced']:
            hours = 40000 * sora['step_s'] / 3600
            lines.append(f'SoRA bf16: {sora["step_s"]:.3f} s/iter -> 40k iterations in {hours:.1f} h '
                         '(target <= 3 h, i.e. <= 0.27 s/iter, on one H100).')
            lines.append('')
    mfu = res.get('mfu', {})
    if mfu:
        unit = 'GFLOP/s' if env['device'].startswith('CPU') else 'TFLOP/s'
        lines += [f'| backbone | method | backbone fwd+bwd GFLOP | precision | fwd+bwd s | achieved {unit} | MFU |',
                  '|---|---|---:|---|---:|---:|---:|']
        for bb, methods in mfu.items():
            for m, r in methods.items():
                if 'error' in r:
                    lines.append(f'| {bb} | {m} | error: {r["error"][:80]} | | | | |')
                    continue
                lines.append(f'| {bb} | {m} | {r["flops"] / 1e9:,.4g} | {r["precision"]} | {_spread(r, "fwd_bwd_s", "{:.4f}")} '
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
        step = train.get('dinov2-l', {}).get('sora', {}).get('bf16', {}).get('img_s')
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
        hw = next((r['image_hw'] for ms in slide.values() for rows in ms.values() for r in rows.values()
                   if 'image_hw' in r), [0, 0])
        lines += [f'Slide inference, one {hw[1]}x{hw[0]} image (the config\'s test_cfg):', '',
                  '| backbone | method | ' + ' | '.join(f'{p} s/img | {p} peak MB' for p in a['precisions']) + ' |',
                  '|---|---|' + '---:|---:|' * len(a['precisions'])]
        for bb, methods in slide.items():
            for m, rows in methods.items():
                cells = []
                for p in a['precisions']:
                    r = rows.get(p, {})
                    cells += ([f'error: {r["error"][:60]}', ''] if 'error' in r else
                              [_spread(r, 's_per_img'), _f(r.get('peak_mb'), '{:.0f}')])
                lines.append(f'| {bb} | {m} | ' + ' | '.join(cells) + ' |')
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
