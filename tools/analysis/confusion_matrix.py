"""Confusion matrix of a segmentor, one per target domain: which classes a domain shift confuses.

    python tools/analysis/confusion_matrix.py CONFIG CHECKPOINT --out DIR [--targets fog night] [--max N]

Runs the model (full, adapter-only or merged checkpoint) on each of the config's ``target_datasets`` and
writes per domain ``confusion_<domain>.csv`` (pixel counts, rows = ground truth, columns = prediction) and
``confusion_<domain>.png`` (rows normalised to 1: the share of each true class predicted as each class),
plus ``confusion.md`` with each domain's pixel accuracy and mIoU from the same counts. Pixels with the
ignore index are left out. mmseg's own confusion_matrix reads a results pickle made in the 'mmseg' scope.
"""
import argparse
import copy
import csv
import os
import os.path as osp

from mmdg.utils.atomic import atomic_open
from mmdg.utils.tool_config import add_cfg_options, load_scoped_config as load_config, savefig


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('config')
    p.add_argument('checkpoint')
    p.add_argument('--out', required=True)
    p.add_argument('--targets', nargs='+', help='domains of target_datasets (default: all)')
    p.add_argument('--max', type=int, default=None, help='at most N images per domain')
    add_cfg_options(p)
    args = p.parse_args(argv)
    from mmdg.utils.tool_config import input_errors_as_messages
    with input_errors_as_messages():
        run(args)


def confusion(model, loader, num_classes, ignore_index=255, limit=None):
    import numpy as np
    import torch
    counts = np.zeros((num_classes, num_classes), dtype=np.int64)
    seen = 0
    with torch.no_grad():
        for batch in loader:
            for sample in model.test_step(batch):
                pred = sample.pred_sem_seg.data.squeeze(0).cpu().numpy().astype(np.int64)
                gt = sample.gt_sem_seg.data.squeeze(0).cpu().numpy().astype(np.int64)
                keep = (gt != ignore_index) & (gt >= 0) & (gt < num_classes)
                counts += np.bincount(gt[keep] * num_classes + pred[keep],
                                      minlength=num_classes ** 2).reshape(num_classes, num_classes)
                seen += 1
                if limit and seen >= limit:
                    return counts, seen
    return counts, seen


def plot(counts, classes, title, path):
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    import numpy as np
    rows = counts.sum(1, keepdims=True)
    norm = np.divide(counts, rows, out=np.zeros(counts.shape, dtype=float), where=rows > 0)
    n = len(classes)
    size = max(5, 0.42 * n + 2)
    fig, ax = plt.subplots(figsize=(size + 1, size))
    im = ax.imshow(norm, cmap='Blues', vmin=0, vmax=1)
    ax.set_xticks(range(n), classes, rotation=90, fontsize=7)
    ax.set_yticks(range(n), classes, fontsize=7)
    for i in range(n):
        for j in range(n):
            if norm[i, j] >= 0.01:
                ax.text(j, i, f'{100 * norm[i, j]:.0f}', ha='center', va='center', fontsize=5.5,
                        color='white' if norm[i, j] > 0.6 else 'black')
        if rows[i, 0] == 0:
            ax.text(-0.5, i, '∅', ha='right', va='center', fontsize=6, color='gray')
    ax.set_xlabel('predicted', fontsize=9)
    ax.set_ylabel('ground truth', fontsize=9)
    ax.set_title(title, fontsize=10)
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label='share of the true class')
    fig.tight_layout()
    savefig(fig, path)
    plt.close(fig)


def run(args):
    import numpy as np
    from mmengine.runner import Runner
    from mmdg.apis.evaluation import select_targets
    from mmdg.apis.merge import build_model
    cfg = load_config(args.config, args.cfg_options)
    if cfg.get('task') == 'det':
        raise SystemExit('error: confusion_matrix.py is for segmentation configs')
    domains = select_targets(cfg, args.targets)
    model = build_model(cfg, args.checkpoint)
    loader_cfg = copy.deepcopy(cfg.get('test_dataloader') or cfg.val_dataloader)
    loader_cfg.update(num_workers=0, persistent_workers=False, batch_size=1)
    os.makedirs(args.out, exist_ok=True)
    lines = ['| domain | images | pixel acc. | mIoU |', '|---|---:|---:|---:|']
    for name, ds in domains.items():
        loader = Runner.build_dataloader(dict(loader_cfg, dataset=ds))
        classes = list(loader.dataset.metainfo['classes'])
        ignore = getattr(loader.dataset, 'ignore_index', 255)
        counts, seen = confusion(model, loader, len(classes), ignore, args.max)
        with atomic_open(osp.join(args.out, f'confusion_{name}.csv'), 'w', newline='') as f:
            w = csv.writer(f)
            w.writerow(['gt \\ pred'] + classes)
            for c, row in zip(classes, counts):
                w.writerow([c] + row.tolist())
        tp = np.diag(counts).astype(float)
        union = counts.sum(0) + counts.sum(1) - tp
        present = counts.sum(1) > 0
        iou = np.divide(tp, union, out=np.zeros_like(tp), where=union > 0)
        miou = 100 * iou[present].mean() if present.any() else float('nan')
        acc = 100 * tp.sum() / max(1, counts.sum())
        plot(counts, classes, f'{name}: {seen} images, mIoU {miou:.2f} (classes present)',
             osp.join(args.out, f'confusion_{name}.png'))
        lines.append(f'| {name} | {seen} | {acc:.2f} | {miou:.2f} |')
        print(f'{name}: {seen} images, pixel acc. {acc:.2f}, mIoU {miou:.2f} -> confusion_{name}.png/.csv')
    with atomic_open(osp.join(args.out, 'confusion.md'), 'w') as f:
        f.write('\n'.join(lines) + '\n')
    print('\n'.join(lines))


if __name__ == '__main__':
    main()
