"""Pre-train the demo's small ViT on a broad procedural distribution, so that the demo adapts a
pre-trained backbone as the real recipes do.

Task: dense prediction of Cityscapes' seven coarse categories (flat, construction, object, nature, sky,
human, vehicle) on street scenes drawn in random appearances (:func:`render_random_style`). Why this and
not self-supervision: it is the cheapest signal that makes a ViT read shape rather than colour within 30
minutes of 2 CPU cores, where DINO / MAE-style objectives need orders of magnitude more compute. It is
not the demo's task (19 classes, one fixed source style) and it never sees the demo's styles or scenes:
its scenes come from a seed stream of their own and their colours from random palettes.

The model is exactly the demo backbone (built from ``configs/_base_/models/demo_vit_tiny_segformer.py``);
a linear head on the last block's tokens predicts a 4x4 grid of group logits per 16x16 patch and is
thrown away. The output is the ViT's state dict in timm layout (float16 safetensors, with the command,
seed and held-out score in its ``record`` metadata), which ``TimmViT(pretrained=...)`` loads.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import os.path as osp
import shlex
import sys
import time
from typing import Dict, Optional

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from mmdg.datasets.synthetic import COARSE_GROUPS, make_pretrain_sample
from mmdg.convert.vit import build_timm_vit
from mmdg.utils.checkpoint import atomic_write

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
DEMO_MODEL_CONFIG = osp.join(REPO, 'configs', '_base_', 'models', 'demo_vit_tiny_segformer.py')
#: The committed output of ``tools/pretrain_demo_backbone.py`` with its defaults; the demos load it.
DEMO_BACKBONE = osp.join(REPO, 'assets', 'demo_vit_tiny_pretrained.safetensors')
#: Indices of the held-out pre-training images: far past any training step.
HELD_OUT_START = 10 ** 9
SUB = 4  # the head predicts labels at stride 4 (a 4x4 grid per 16x16 patch)


def build_demo_vit() -> nn.Module:
    """The demo backbone's timm ViT, as ``configs/_base_/models/demo_vit_tiny_segformer.py`` builds it."""
    from mmengine.config import Config
    bb = Config.fromfile(DEMO_MODEL_CONFIG).model.backbone
    return build_timm_vit(bb.arch, img_size=tuple(bb.img_size), patch_size=bb.patch_size, **bb.model_kwargs)


class CoarseHead(nn.Module):
    """Per-token linear layer to ``groups x (p/SUB)^2`` logits, rearranged to a stride-``SUB`` map."""

    def __init__(self, dim: int, patch: int, groups: int = len(COARSE_GROUPS)):
        super().__init__()
        self.cells = patch // SUB
        self.groups = groups
        self.linear = nn.Linear(dim, groups * self.cells ** 2)

    def forward(self, tokens: torch.Tensor, grid) -> torch.Tensor:  # (B, N, C) -> (B, G, H/SUB, W/SUB)
        b = tokens.shape[0]
        x = self.linear(tokens).transpose(1, 2).reshape(b, self.groups * self.cells ** 2, *grid)
        return F.pixel_shuffle(x, self.cells)


class PretrainSet(torch.utils.data.Dataset):
    """Samples ``start .. start + length`` of the pre-training stream: (normalised image, labels at
    stride SUB). Each sample is a pure function of its index, so any worker count gives the same data."""
    MEAN = np.array([123.675, 116.28, 103.53], np.float32)
    STD = np.array([58.395, 57.12, 57.375], np.float32)

    def __init__(self, start: int, length: int, size=(128, 256)):
        self.start, self.length, self.size = start, length, tuple(size)

    def __len__(self):
        return self.length

    def __getitem__(self, i):
        img, groups = make_pretrain_sample(self.start + i, self.size)
        x = torch.from_numpy(((img.astype(np.float32) - self.MEAN) / self.STD).transpose(2, 0, 1).copy())
        y = torch.from_numpy(groups[SUB // 2::SUB, SUB // 2::SUB].astype(np.int64))
        return x, y


def _forward(vit: nn.Module, head: CoarseHead, x: torch.Tensor) -> torch.Tensor:
    tokens = vit.forward_features(x)[:, vit.num_prefix_tokens:]
    p = vit.patch_embed.patch_size
    return head(tokens, (x.shape[-2] // p[0], x.shape[-1] // p[1]))


@torch.no_grad()
def evaluate(vit: nn.Module, head: CoarseHead, num_images: int = 256, batch: int = 64, size=(128, 256)) -> Dict:
    """Coarse-group mIoU / pixel accuracy (%) on held-out pre-training images."""
    vit.eval()
    head.eval()
    g = head.groups
    hist = torch.zeros(g, g, dtype=torch.long)
    loader = torch.utils.data.DataLoader(PretrainSet(HELD_OUT_START, num_images, size), batch_size=batch)
    for x, y in loader:
        pred = _forward(vit, head, x).argmax(1)
        hist += torch.bincount(y.flatten() * g + pred.flatten(), minlength=g * g).reshape(g, g)
    vit.train()
    head.train()
    inter = hist.diag().double()
    union = hist.sum(0) + hist.sum(1) - hist.diag()
    present = hist.sum(1) > 0
    iou = inter[present] / union[present].double()
    return dict(mIoU=round(100 * iou.mean().item(), 2), aAcc=round(100 * (inter.sum() / hist.sum()).item(), 2),
                images=num_images)


def file_sha256(path: str) -> str:
    h = hashlib.sha256()
    with open(path, 'rb') as f:
        for chunk in iter(lambda: f.read(1 << 20), b''):
            h.update(chunk)
    return h.hexdigest()


def pretrain(out: str, steps: int = 2400, batch_size: int = 32, lr: float = 1e-3, weight_decay: float = 0.05,
             warmup: int = 100, seed: int = 0, workers: int = 1, threads: Optional[int] = 2,
             eval_images: int = 256, log_interval: int = 50, progress: bool = True,
             command: Optional[str] = None) -> Dict:
    """Train, evaluate on held-out images, write ``out`` (float16 safetensors) atomically and a
    ``<out>.json`` record beside it. Returns that record. Same arguments and machine: same file."""
    from safetensors.torch import save
    if steps < 1 or batch_size < 1:
        raise ValueError(f'steps and batch_size must be >= 1, got {steps} and {batch_size}')
    if threads:
        torch.set_num_threads(threads)
    torch.manual_seed(seed)
    vit = build_demo_vit()
    head = CoarseHead(vit.embed_dim, vit.patch_embed.patch_size[0])
    vit.train()
    # the demo trains no pooling norm or classifier: leave the final norm in (it feeds the head), the rest out
    params = [p for n, p in vit.named_parameters() if not n.startswith(('fc_norm.', 'head.'))]
    params += list(head.parameters())
    no_decay = lambda p: p.ndim <= 1  # noqa: E731  biases, norms, layer scales: no decay
    opt = torch.optim.AdamW([dict(params=[p for p in params if not no_decay(p)], weight_decay=weight_decay),
                             dict(params=[p for p in params if no_decay(p)], weight_decay=0.0)], lr=lr)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: (s + 1) / warmup if s < warmup else 0.5 * (1 + math.cos(math.pi * (s - warmup) / max(steps - warmup, 1))))
    data = torch.utils.data.DataLoader(PretrainSet(0, steps * batch_size), batch_size=batch_size, shuffle=False,
                                       num_workers=workers, persistent_workers=False)
    try:
        from tqdm import tqdm
    except ImportError:  # pragma: no cover
        progress = False
    log = []
    t0 = time.time()
    running = None
    bar = tqdm(data, total=steps, desc='pre-training', unit='step', disable=not progress)
    for step, (x, y) in enumerate(bar):
        loss = F.cross_entropy(_forward(vit, head, x), y)
        if not torch.isfinite(loss):
            raise FloatingPointError(f'pre-training loss is {loss.item()} at step {step}; lower --lr')
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        sched.step()
        running = loss.item() if running is None else 0.95 * running + 0.05 * loss.item()
        bar.set_postfix(loss=f'{running:.3f}')
        if (step + 1) % log_interval == 0 or step + 1 == steps:
            log.append(dict(step=step + 1, loss=round(running, 4), lr=opt.param_groups[0]['lr'],
                            seconds=round(time.time() - t0, 1)))
    bar.close()
    train_seconds = time.time() - t0
    held_out = evaluate(vit, head, eval_images)
    state = {k: v.detach().to(torch.float16).contiguous() for k, v in vit.state_dict().items()}
    record = dict(command=command or '', seed=seed, steps=steps, batch_size=batch_size, lr=lr,
                  weight_decay=weight_decay, warmup=warmup, task='coarse groups ' + '/'.join(COARSE_GROUPS),
                  held_out_coarse=held_out, train_minutes=round(train_seconds / 60, 2),
                  torch=torch.__version__, threads=torch.get_num_threads())
    # the file's metadata holds what made it, not how long it took, as one sorted JSON string (safetensors
    # writes a map of several keys in an arbitrary order): the same run writes the same bytes
    meta = dict(record=json.dumps({k: v for k, v in record.items() if k != 'train_minutes'}, sort_keys=True))
    os.makedirs(osp.dirname(osp.abspath(out)), exist_ok=True)
    atomic_write(out, lambda f: f.write(save(state, metadata=meta)))
    record.update(sha256=file_sha256(out), parameters=sum(v.numel() for v in state.values()), log=log)
    atomic_write(out + '.json', lambda f: f.write((json.dumps(record, indent=1) + '\n').encode()))
    return record


def command_line() -> str:
    return ' '.join(shlex.quote(a) for a in [osp.relpath(sys.argv[0], REPO) if osp.isabs(sys.argv[0]) else sys.argv[0]]
                    + sys.argv[1:])
