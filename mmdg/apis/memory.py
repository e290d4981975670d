"""Training memory of a config: the exact static part (weights, EMA copy, gradients, AdamW moments) plus
what autograd keeps for the backward pass, measured on training steps at batch 1 and 2 (see
``tools/memory_estimate.py``), and what one of N GPUs holds under DDP or FSDP.

A model too large to build on this machine (DINOv3-7B) is counted on the meta device and its activations
are measured on the same config with fewer blocks (:func:`probe_activations`), extrapolated per block."""
import copy

import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope

GIB = 1024 ** 3
#: Above this many parameters the activations come from the depth probe: the full build (fp32 weights,
#: an SVD per adapted layer, a gradient per trainable weight) no longer fits a workstation's memory.
PROBE_ABOVE = 1.5e9
#: What a GPU needs beyond the estimate (CUDA context, kernel workspaces, allocator slack): the CPU
#: measurement cannot see it, so a fit leaves this much free.
GPU_RESERVE = 3 * GIB


def load(path: str, cfg_options: dict = None) -> Config:
    cfg = Config.fromfile(path)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    init_default_scope(cfg.get('default_scope', 'mmdg'))
    return cfg


def saved_activation_bytes(model, data) -> int:
    """Bytes of the distinct tensors autograd saves during one loss computation (parameters, which
    autograd also saves, are counted in the static part instead)."""
    params = {p.untyped_storage().data_ptr() for p in model.parameters()}
    seen = {}

    def pack(t):
        try:
            storage = t.untyped_storage()
            if storage.data_ptr() not in params:
                seen[storage.data_ptr()] = storage.nbytes()
        except (RuntimeError, NotImplementedError):  # sparse / wrapper tensors: count their size
            seen[id(t)] = t.numel() * t.element_size()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        losses = model(**data, mode='loss')
    loss = sum(v for k, v in losses.items() if 'loss' in k)
    loss.backward()
    return sum(seen.values())


def train_input_size(cfg) -> tuple:
    """(h, w) of a training image: the data preprocessor's fixed size, else the training crop."""
    size = (cfg.model.get('data_preprocessor') or {}).get('size')
    if size:
        return tuple(size)
    dataset = cfg.train_dataloader.dataset
    for d in dataset.get('datasets', [dataset]):  # a ConcatDataset's parts
        for t in d.get('pipeline', []):
            if str(t.get('type', '')).split('.')[-1] == 'RandomCrop':
                return tuple(t['crop_size'])
    raise SystemExit(f'error: cannot tell the training input size of {cfg.filename}: set '
                     'model.data_preprocessor.size or a RandomCrop in the training pipeline')


def measure(model, cfg, bf16: bool) -> tuple:
    """Saved bytes of a training step at batch 1 and at batch 2 (random images and labels)."""
    from mmengine.structures import PixelData
    from mmseg.structures import SegDataSample
    model.train()
    h, w = train_input_size(cfg)
    saved = []
    for n in (1, 2):  # per-image part = the difference; the rest (e.g. autocast's weight copies) is fixed
        samples = []
        for _ in range(n):
            sample = SegDataSample(metainfo=dict(img_shape=(h, w), pad_shape=(h, w), ori_shape=(h, w)))
            sample.gt_sem_seg = PixelData(data=torch.randint(0, 19, (1, h, w)))
            samples.append(sample)
        data = dict(inputs=torch.randn(n, 3, h, w), data_samples=samples)
        with torch.autocast('cpu', dtype=torch.bfloat16, enabled=bf16):
            saved.append(saved_activation_bytes(model, data))
        model.zero_grad(set_to_none=True)
    return tuple(saved)


def parameter_counts(cfg) -> dict:
    """Total and trainable parameters, and the largest transformer block's (FSDP gathers one block at a
    time), from the model built on the meta device: exact, and no memory even at 7B."""
    from mmdg.adapters import find_blocks
    from mmdg.convert.released import build_on_meta
    model = build_on_meta(cfg)
    blocks = find_blocks(model.backbone)[1]
    return dict(params=sum(p.numel() for p in model.parameters()),
                trainable=sum(p.numel() for p in model.parameters() if p.requires_grad),
                block=max(sum(p.numel() for p in b.parameters()) for b in blocks),
                block_trainable=max(sum(p.numel() for p in b.parameters() if p.requires_grad) for b in blocks))


def block_roles(model) -> list:
    """Per transformer block of a ``TimmViT`` backbone that runs (up to the last output): whether a gradient
    reaches it. Blocks no gradient reaches (a frozen prefix) save nothing for the backward pass; the others
    each save about the same (the per-block cost the probe measures)."""
    from mmdg.adapters import find_blocks
    vit = model.backbone.vit
    blocks = find_blocks(vit)[1]
    reached = any(p.requires_grad for n, p in vit.named_parameters() if not n.startswith('blocks.'))
    roles = []
    for block in blocks[:max(model.backbone.out_indices) + 1]:  # timm runs no block past the last output
        reached = reached or any(p.requires_grad for p in block.parameters())
        roles.append(reached)
    return roles


def probe_config(cfg, depth: int, frozen: int, outs: list) -> Config:
    """``cfg`` with ``depth`` blocks at the same width: the first ``frozen`` without gradient, the adapters
    (if any) in the rest, the outputs at ``outs``."""
    cfg = copy.deepcopy(cfg)
    bb = cfg.model.backbone
    bb.model_kwargs = dict(bb.get('model_kwargs') or {}, depth=depth)
    bb.update(out_indices=tuple(outs), frozen_blocks=frozen if not bb.get('freeze') else 0)
    if bb.get('adapter') and bb.adapter.get('blocks') is not None:  # all blocks when all are frozen
        bb.adapter.blocks = (frozen, depth) if frozen < depth else None
    return cfg


def materialize(model):
    """A meta-device model on the CPU with finite stand-in values: saved bytes depend on shapes only,
    and this skips the initialisation (an SVD per SoRA layer takes minutes at width 4096)."""
    model.to_empty(device='cpu')
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0, 0.02)
        for b in model.buffers():  # normalisation statistics, rope periods: 1 keeps every division finite
            if b.is_floating_point():
                b.fill_(1)
            else:
                b.zero_()
    return model


def probe_activations(cfg, bf16: bool, step: int = 2) -> tuple:
    """Saved bytes at batch 1 and 2 of the full-depth model, measured on two shallow copies (same width,
    input size, head, outputs: a frozen prefix of one block where the real one has any, then gradient-
    reached blocks) that differ by ``step`` gradient-reached blocks, extrapolated linearly: per block =
    difference / step. The frozen prefix beyond the probe's counts 0 (autograd records nothing there).
    A gradient-free block after a trained one counts as a trained block (an upper bound)."""
    from mmdg.convert.released import build_on_meta
    roles = block_roles(build_on_meta(cfg))
    depth, frozen = len(roles), roles.index(True) if True in roles else len(roles)
    outs = sorted(i if i >= 0 else len(roles) + i for i in cfg.model.backbone.out_indices)
    n_frozen_outs = sum(o < frozen for o in outs)
    if frozen == depth:  # nothing trains in the ViT: the frozen blocks are what varies
        probes = [(d, d) for d in (len(outs), len(outs) + step)]
    else:
        pf = max(n_frozen_outs, 1 if frozen else 0)
        d1 = pf + max(len(outs) - n_frozen_outs, 1)
        probes = [(d1, pf), (d1 + step, pf)]
    saved = []
    for d, pf in probes:
        # outputs at the last blocks of the probe's frozen prefix and of the whole probe: distinct, in order
        p_outs = list(range(pf - n_frozen_outs, pf)) + list(range(d - len(outs) + n_frozen_outs, d))
        model = build_on_meta(probe_config(cfg, d, pf, p_outs))
        want = [i >= pf for i in range(d)]
        if block_roles(model) != want:
            raise ValueError(f'the depth probe of {cfg.filename} did not get a frozen prefix of {pf} blocks then '
                             f'{d - pf} trained ones (got {block_roles(model)}); estimate it at full size')
        torch.manual_seed(0)
        saved.append(measure(materialize(model), cfg, bf16))
        del model
    (d1, pf), (d2, _) = probes
    # blocks of the kind that varies between the probes: in the real model and in the first probe
    real, probed = (depth, d1) if frozen == depth else (depth - frozen, d1 - pf)
    return tuple(a + (real - probed) * (b - a) / (d2 - d1) for a, b in zip(*saved))


def estimate(path: str, batch: int, grad_checkpointing: bool, bf16: bool, cfg_options: dict = None,
             probe: bool = None) -> dict:
    """Static bytes (single GPU, fp32 weights, gradients, AdamW and EMA), activations at ``batch`` and the
    counts that :func:`per_gpu` needs. ``probe``: measure the activations by depth probe (``None``: only
    when the model has more than :data:`PROBE_ABOVE` parameters)."""
    cfg = load(path, cfg_options)
    cfg.model.backbone.update(pretrained=None, grad_checkpointing=grad_checkpointing)
    counts = parameter_counts(cfg)
    probe = counts['params'] > PROBE_ABOVE if probe is None else probe
    if probe:
        saved = probe_activations(cfg, bf16)
    else:
        from mmdg.registry import MODELS
        torch.manual_seed(0)
        saved = measure(MODELS.build(copy.deepcopy(cfg.model)), cfg, bf16)
    # fixed = what batch 1 keeps beyond one image's share; below 0 only by measurement noise (allocation
    # reuse between the two steps), so it is clamped: a negative memory is no estimate
    per_image, fixed = saved[1] - saved[0], max(2 * saved[0] - saved[1], 0)
    ema = any(hk.get('type') == 'EMAHook' for hk in cfg.get('custom_hooks', []))
    static = 4 * (counts['params'] * (2 if ema else 1) + 3 * counts['trainable'])
    return dict(counts, static=static, fixed=fixed, activations_per_image=per_image, batch=batch, ema=ema,
                bf16=bf16, probed=probe, total=static + fixed + batch * per_image)


def per_gpu(est: dict, n: int, engine: str) -> float:
    """Bytes one of ``n`` GPUs holds in training. Assumptions:

    - activations (fixed + batch x per image) are per GPU, the same for both engines, never sharded;
    - ``ddp``: every GPU holds fp32 weights (4 B), fp32 gradients (4 B), AdamW moments (8 B) per
      trainable parameter and the EMA copy (4 B per parameter); with n > 1, DDP's buckets hold a second
      copy of the gradients (mmengine's wrapper keeps gradient_as_bucket_view off);
    - ``fsdp``: frozen weights in the compute dtype (bf16: 2 B), trainable ones as fp32 masters (4 B) +
      fp32 gradients (4 B) + AdamW moments (8 B), the EMA copy in the weights' layout, all sharded over n;
      with n > 1 plus the transient all-gathered weights of 2 blocks (the one computing, the one
      prefetched) in the compute dtype and one block's full fp32 gradients before the reduce-scatter."""
    p, t = est['params'], est['trainable']
    act = est['fixed'] + est['batch'] * est['activations_per_image']
    if engine == 'ddp':
        return act + 4 * p + 12 * t + 4 * p * est['ema'] + 4 * t * (n > 1)
    if engine != 'fsdp':
        raise ValueError(f'engine must be ddp or fsdp, got {engine!r}')
    compute = 2 if est['bf16'] else 4
    weights = compute * (p - t) + 4 * t
    sharded = (weights * (2 if est['ema'] else 1) + 12 * t) / n
    gathered = (2 * compute * est['block'] + 4 * est['block_trainable']) * (n > 1)
    return act + sharded + gathered


def fit(est: dict, gpus, gpu_memory: float = 80 * GIB, reserve: float = GPU_RESERVE) -> list:
    """Per GPU count: the bytes per GPU under ddp and fsdp and whether training needs sharding: ``'no'``
    (fits with ddp), ``'yes'`` (fits only with fsdp) or ``'no fit'``; a fit leaves ``reserve`` free."""
    rows = []
    for n in gpus:
        ddp, fsdp = per_gpu(est, n, 'ddp'), per_gpu(est, n, 'fsdp')
        room = gpu_memory - reserve
        rows.append(dict(gpus=n, ddp=ddp, fsdp=fsdp,
                         needs_sharding='no' if ddp <= room else 'yes' if fsdp <= room else 'no fit'))
    return rows
