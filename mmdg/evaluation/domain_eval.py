"""Evaluate one segmentor on several target domains: per-domain mIoU, per-class IoU, overlays."""
from __future__ import annotations

import os
import os.path as osp
from typing import Dict, List, Optional, Sequence

import cv2
import numpy as np
import torch
from mmengine.runner import Runner
from mmseg.evaluation import IoUMetric


def per_class_iou(results: Sequence) -> np.ndarray:
    """Per-class IoU (%) from IoUMetric's accumulated ``(intersect, union, pred, label)`` areas;
    NaN for classes absent from both prediction and label."""
    inter = sum(r[0] for r in results).double()
    union = sum(r[1] for r in results).double()
    iou = (inter / union).numpy() * 100
    iou[union.numpy() == 0] = np.nan
    return iou


def _overlay(img_bgr: np.ndarray, pred: np.ndarray, gt: Optional[np.ndarray], palette: np.ndarray) -> np.ndarray:
    def colour(lab):
        out = np.zeros((*lab.shape, 3), np.uint8)
        valid = lab < len(palette)
        out[valid] = palette[lab[valid]][:, ::-1]  # palette is RGB, images are BGR
        return out
    blend = cv2.addWeighted(img_bgr, 0.4, colour(pred), 0.6, 0)
    panels = [img_bgr, blend] + ([colour(gt)] if gt is not None else [])
    return np.concatenate(panels, axis=1)


@torch.no_grad()
def evaluate_domains(model, targets: Dict[str, Dict], batch_size: int = 4, num_workers: int = 0,
                     overlay_dir: Optional[str] = None, num_overlays: int = 2,
                     progress: bool = True) -> Dict[str, Dict]:
    """Run ``model`` (an mmseg segmentor) over each dataset config in ``targets``.

    Returns ``{name: dict(mIoU=..., per_class={class: IoU}, num_images=...)}``; the metric of each
    domain is computed from its own images only, whatever the batch size. With ``overlay_dir``, writes
    ``<name>_<k>.png`` panels (image | prediction blend | ground truth) for the first images.
    """
    model.eval()
    out: Dict[str, Dict] = {}
    for name, ds_cfg in targets.items():
        loader = Runner.build_dataloader(dict(
            batch_size=batch_size, num_workers=num_workers, dataset=ds_cfg,
            sampler=dict(type='DefaultSampler', shuffle=False)))
        meta = loader.dataset.metainfo
        metric = IoUMetric(iou_metrics=['mIoU'])
        metric.dataset_meta = meta
        written = 0
        it = loader
        if progress:
            from tqdm import tqdm
            it = tqdm(loader, desc=f'eval {name}', unit='batch', leave=False)
        for data in it:
            samples = model.test_step(data)
            metric.process(data, [s.to_dict() for s in samples])
            for s in samples[:max(num_overlays - written, 0)] if overlay_dir else ():
                os.makedirs(overlay_dir, exist_ok=True)
                img = cv2.imread(s.img_path)
                pred = s.pred_sem_seg.data[0].cpu().numpy().astype(np.int64)
                gt = s.gt_sem_seg.data[0].cpu().numpy().astype(np.int64) if 'gt_sem_seg' in s else None
                cv2.imwrite(osp.join(overlay_dir, f'{name}_{written}.png'),
                            _overlay(img, pred, gt, np.asarray(meta['palette'], np.uint8)))
                written += 1
        iou = per_class_iou(metric.results)
        out[name] = dict(mIoU=float(np.nanmean(iou)) if np.isfinite(iou).any() else float('nan'),
                         per_class={c: float(v) for c, v in zip(meta['classes'], iou)},
                         num_images=len(loader.dataset))
    return out


def domain_table(results: Dict[str, Dict], mean_over: Optional[List[str]] = None, title: str = 'mIoU') -> str:
    """A markdown table ``domain | mIoU | images`` with the mean over ``mean_over`` (default: all)."""
    names = list(results)
    mean_over = [n for n in (mean_over or names) if n in results]
    rows = [f'| domain | {title} | images |', '|---|---:|---:|']
    rows += [f'| {n} | {results[n]["mIoU"]:.2f} | {results[n]["num_images"]} |' for n in names]
    if mean_over:
        mean = float(np.mean([results[n]['mIoU'] for n in mean_over]))
        rows.append(f'| **mean ({", ".join(mean_over)})** | **{mean:.2f}** | |')
    return '\n'.join(rows)
