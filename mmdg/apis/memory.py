"""Training memory of a config: the exact static part (weights, EMA copy, gradients, AdamW moments) plus
what autograd keeps for the backward pass, measured on training steps at batch 1 and 2 (see
``tools/memory_estimate.py``)."""
import copy

import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope

GIB = 1024 ** 3


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


def estimate(path: str, batch: int, grad_checkpointing: bool, bf16: bool) -> dict:
    from mmengine.structures import PixelData
    from mmseg.structures import SegDataSample
    cfg = Config.fromfile(path)
    init_default_scope(cfg.get('default_scope', 'mmdg'))
    from mmdg.registry import MODELS
    model_cfg = copy.deepcopy(cfg.model)
    model_cfg.backbone.update(pretrained=None, grad_checkpointing=grad_checkpointing)
    torch.manual_seed(0)
    model = MODELS.build(model_cfg)
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
    # fixed = what batch 1 keeps beyond one image's share; below 0 only by measurement noise (allocation
    # reuse between the two steps), so it is clamped: a negative memory is no estimate
    per_image, fixed = saved[1] - saved[0], max(2 * saved[0] - saved[1], 0)
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    ema = any(hk.get('type') == 'EMAHook' for hk in cfg.get('custom_hooks', []))
    static = 4 * (total * (2 if ema else 1) + 3 * trainable)
    return dict(static=static, fixed=fixed, activations_per_image=per_image,
                total=static + fixed + batch * per_image)
