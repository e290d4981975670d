"""Singular-value spectra of a pre-trained ViT and where fine-tuning moved its weights (the logic of
``tools/analysis/spectrum.py``; the formulas are in its help)."""
import copy
import csv
import os
import os.path as osp
import re
import sys

import torch

from mmdg.utils.atomic import atomic_write
from mmdg.utils.tool_config import savefig

LAYER_ORDER = ('q', 'k', 'v', 'qkv', 'proj', 'fc1', 'fc1_g', 'fc1_x', 'fc2')


def _backbone_spec(cfg):
    bb = cfg.model.get('backbone')
    if not bb or 'TimmViT' not in str(bb.get('type', '')):
        raise SystemExit(f'error: the config\'s model.backbone is {bb and bb.get("type")}, not a TimmViT')
    return bb


def pretrained_vit(args, cfg=None):
    """The pre-trained timm ViT, described by --config (its backbone) or --arch, weights from --pretrained."""
    from mmdg.convert.vit import build_timm_vit, load_vit_weights
    kwargs, resample = {}, 'pinv'
    if cfg is not None:
        bb = _backbone_spec(cfg)
        arch, img, patch = bb.get('arch', 'dinov2-l'), bb.get('img_size', 512), bb.get('patch_size', 16)
        kwargs = dict(bb.get('model_kwargs') or {})
        resample = bb.get('patch_resample', 'pinv')
        weights = args.pretrained or bb.get('pretrained')
    else:
        arch, img, patch, weights = args.arch, 518, 14, args.pretrained
    if args.model_kwargs:
        kwargs.update(args.model_kwargs)
    if args.img_size:
        img = tuple(args.img_size) if len(args.img_size) == 2 else args.img_size[0]
    patch = args.patch_size or patch
    if args.timm_pretrained:
        import timm
        from mmdg.convert.vit import timm_name
        vit = timm.create_model(timm_name(arch), pretrained=True, num_classes=0, dynamic_img_size=True, **kwargs)
        return vit, f'{arch} (timm weights)'
    vit = build_timm_vit(arch, img_size=img, patch_size=patch, **kwargs)
    if weights:
        load_vit_weights(vit, weights, patch_resample=resample)
        return vit, f'{arch} ({osp.basename(weights)})'
    if args.run:
        raise SystemExit('error: comparing trained runs needs the pre-trained weights they started from: '
                         'pass --pretrained FILE (or a config whose backbone has pretrained=)')
    print(f'warning: no --pretrained: the spectrum is of a randomly initialised {arch}', file=sys.stderr)
    return vit, f'{arch} (random init)'


def block_matrices(state):
    """{(block, layer): W} for every 2-D weight inside the ViT's blocks; fused qkv split into q, k, v."""
    out = {}
    for key, w in state.items():
        m = re.match(r'^(?:.*\.)?blocks\.(\d+)\.(.+)\.weight$', key)
        if not m or w.dim() != 2:
            continue
        block, name = int(m.group(1)), m.group(2)
        layer = name.split('.')[-1]
        if layer.endswith('_proj') and name.startswith('attn.') and layer[0] in 'qkv':
            layer = layer[0]  # EVA02's separate q_proj / k_proj / v_proj
        if layer == 'qkv' and w.shape[0] == 3 * w.shape[1]:
            for i, part in enumerate('qkv'):
                out[(block, part)] = w[i * w.shape[1]:(i + 1) * w.shape[1]]
        else:
            out[(block, layer)] = w
    return out


def _layer_key(layer):
    return (LAYER_ORDER.index(layer) if layer in LAYER_ORDER else len(LAYER_ORDER), layer)


def trained_vit_state(label, config, checkpoint, pre_vit, args):
    """The trained run's ViT weights with every adapter folded in (full, adapter-only or merged file)."""
    if config == '-':
        from mmdg.convert.vit import load_vit_weights
        vit = load_vit_weights(copy.deepcopy(pre_vit), checkpoint)
        return vit.state_dict()
    from mmdg.adapters import merge_adapters
    from mmdg.apis.merge import build_model
    from mmdg.utils.tool_config import load_tool_config
    cfg = load_tool_config(config, args.cfg_options)
    bb = _backbone_spec(cfg)
    if args.pretrained:
        bb.pretrained = args.pretrained  # the adapter-only case rebuilds on these
    model = build_model(cfg, checkpoint)
    vit = model.backbone.vit
    merge_adapters(vit)
    return vit.state_dict()


def subspace_fractions(w_pre, dw, r):
    """Fractions of ||dW||^2 in the top-r / bottom-r left and right singular subspaces of w_pre."""
    u, s, vh = torch.linalg.svd(w_pre.double(), full_matrices=False)
    dw = dw.double()
    total = dw.pow(2).sum()
    k = min(r, s.numel())
    up, um = u[:, :k], u[:, -k:]
    vp, vm = vh[:k], vh[-k:]
    frac = lambda x: float(x.pow(2).sum() / total) if total > 0 else float('nan')  # noqa: E731
    return dict(left_top=frac(up.T @ dw), left_bottom=frac(um.T @ dw), right_top=frac(dw @ vp.T),
                right_bottom=frac(dw @ vm.T), chance=k / s.numel(), dw_norm=float(total.sqrt()),
                w_norm=float(w_pre.double().norm()))


def write_csv(path, rows, fields):
    import io

    from mmdg.utils.atomic import atomic_write
    text = io.StringIO(newline='')
    w = csv.DictWriter(text, fieldnames=fields)
    w.writeheader()
    w.writerows(rows)
    atomic_write(path, lambda f: f.write(text.getvalue().encode()))


def plot_spectrum(mats, title, path, r):
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    layers = sorted({layer for _, layer in mats}, key=_layer_key)
    blocks = sorted({b for b, _ in mats})
    cols = min(3, len(layers))
    rows = -(-len(layers) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.2 * rows), squeeze=False)
    cmap = plt.get_cmap('viridis')
    for ax, layer in zip(axes.flat, layers):
        for b in blocks:
            if (b, layer) not in mats:
                continue
            s = mats[(b, layer)]
            ax.semilogy(range(1, s.numel() + 1), s.numpy(), color=cmap(b / max(1, len(blocks) - 1)), lw=1,
                        label=f'block {b}' if b in (blocks[0], blocks[-1]) else None)
        n = max(mats[(b, layer)].numel() for b in blocks if (b, layer) in mats)
        k = min(r, n)
        ax.axvspan(1, k, color='tab:red', alpha=0.08)
        ax.axvspan(n - k + 1, n, color='tab:blue', alpha=0.12)
        ax.set_title(f'{layer}  (shaded: top-{k} red, bottom-{k} blue)', fontsize=9)
        ax.set_xlabel('index i (descending)', fontsize=8)
        ax.set_ylabel('singular value', fontsize=8)
        ax.tick_params(labelsize=7)
        ax.legend(fontsize=7)
    for ax in list(axes.flat)[len(layers):]:
        ax.axis('off')
    fig.suptitle(f'Singular-value spectra of {title}', fontsize=11)
    fig.tight_layout()
    savefig(fig, path)
    plt.close(fig)


def plot_subspace(rows, path, r):
    """One panel per method: per block, the share of the update in each of the four subspaces (bars)."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    labels = list(dict.fromkeys(row['method'] for row in rows))
    fig, axes = plt.subplots(len(labels), 1, figsize=(9, 2.6 * len(labels) + 0.6), squeeze=False)
    kinds = [('left_bottom', f'left minor (bottom-{r})', 'tab:blue'),
             ('left_top', f'left principal (top-{r})', 'tab:red'),
             ('right_bottom', f'right minor (bottom-{r})', 'lightsteelblue'),
             ('right_top', f'right principal (top-{r})', 'lightsalmon')]
    for ax, label in zip(axes[:, 0], labels):
        mine = [row for row in rows if row['method'] == label and row['dw_norm'] > 0]
        blocks = sorted({row['block'] for row in mine})

        def share(key, b):
            # energy-weighted over the block's layers: the share of the block's whole update
            sel = [row for row in mine if row['block'] == b]
            tot = sum(row['dw_norm'] ** 2 for row in sel)
            return sum(row[key] * row['dw_norm'] ** 2 for row in sel) / tot if tot else 0.0
        width = 0.2
        for j, (key, name, color) in enumerate(kinds):
            ax.bar([b + (j - 1.5) * width for b in blocks], [share(key, b) for b in blocks], width,
                   color=color, label=name)
        chance = sum(row['chance'] for row in mine) / max(1, len(mine))
        ax.axhline(chance, color='gray', lw=0.8, ls=':', label=f'chance (r/rank = {chance:.3f})')
        ax.set_title(f'{label}', fontsize=10)
        ax.set_ylabel('share of ||dW||^2', fontsize=8)
        ax.set_xticks(blocks)
        ax.set_ylim(0, 1.05)
        ax.grid(axis='y', alpha=0.3)
        ax.tick_params(labelsize=7)
    axes[-1, 0].set_xlabel('block', fontsize=9)
    axes[0, 0].legend(fontsize=7, loc='center left', bbox_to_anchor=(1.0, 0.5))
    fig.suptitle('Where fine-tuning moved the weights: principal vs. minor singular subspaces of W_pre',
                 fontsize=10)
    fig.tight_layout()
    savefig(fig, path)
    plt.close(fig)


def summary_table(rows, r):
    lines = [f'| method | adapted layers | left top-{r} | left bottom-{r} | right top-{r} | right bottom-{r} | chance |',
             '|---|---:|---:|---:|---:|---:|---:|']
    for label in dict.fromkeys(row['method'] for row in rows):
        sel = [row for row in rows if row['method'] == label and row['dw_norm'] > 0]
        tot = sum(row['dw_norm'] ** 2 for row in sel) or 1.0
        avg = lambda k: sum(row[k] * row['dw_norm'] ** 2 for row in sel) / tot  # noqa: E731
        ch = sum(row['chance'] for row in sel) / max(1, len(sel))
        lines.append(f'| {label} | {len(sel)} | {avg("left_top"):.3f} | {avg("left_bottom"):.3f} | '
                     f'{avg("right_top"):.3f} | {avg("right_bottom"):.3f} | {ch:.3f} |')
    return '\n'.join(lines) + '\n'


def run_spectrum(args, cfg=None) -> None:
    """Spectra (and, with ``args.run``, the subspace fractions of each run's update) into ``args.out``; ``args``
    are ``tools/analysis/spectrum.py``'s options, ``cfg`` the loaded ``--config``."""
    pre_vit, title = pretrained_vit(args, cfg)
    pre = block_matrices(pre_vit.state_dict())
    if not pre:
        raise SystemExit('error: no blocks.<i>.<layer>.weight matrices found in the ViT')
    os.makedirs(args.out, exist_ok=True)
    spectra = {k: torch.linalg.svdvals(w.double()).float() for k, w in pre.items()}
    rows = []
    for (b, layer), s in sorted(spectra.items(), key=lambda kv: (kv[0][0], _layer_key(kv[0][1]))):
        for i, v in enumerate(s.tolist()):
            rows.append(dict(block=b, layer=layer, index=i, singular_value=f'{v:.6g}'))
    write_csv(osp.join(args.out, 'spectrum.csv'), rows, ['block', 'layer', 'index', 'singular_value'])
    plot_spectrum(spectra, title, osp.join(args.out, 'spectrum.png'), args.rank)
    print(f'spectrum of {len(spectra)} matrices ({title}) -> {osp.join(args.out, "spectrum.png")}, spectrum.csv')
    if not args.run:
        return
    sub = []
    for label, config, ckpt in args.run:
        trained = block_matrices(trained_vit_state(label, config, ckpt, pre_vit, args))
        moved = 0
        for key in sorted(pre, key=lambda k: (k[0], _layer_key(k[1]))):
            if key not in trained or trained[key].shape != pre[key].shape:
                raise SystemExit(f'error: run {label!r}: block {key[0]} {key[1]} is missing or of another '
                                 'shape than in the pre-trained ViT (another architecture?)')
            dw = trained[key].double() - pre[key].double()
            if dw.abs().max() == 0:
                continue  # a frozen layer: nothing to attribute
            moved += 1
            sub.append(dict(method=label, block=key[0], layer=key[1], d_out=dw.shape[0], d_in=dw.shape[1],
                            r=min(args.rank, *dw.shape), **subspace_fractions(pre[key], dw, args.rank)))
        if not moved:
            print(f'warning: run {label!r} has the pre-trained weights unchanged in every block',
                  file=sys.stderr)
    fields = ['method', 'block', 'layer', 'd_out', 'd_in', 'r', 'left_top', 'left_bottom', 'right_top',
              'right_bottom', 'chance', 'dw_norm', 'w_norm']
    write_csv(osp.join(args.out, 'subspace.csv'), sub, fields)
    if sub:
        plot_subspace(sub, osp.join(args.out, 'subspace.png'), args.rank)
    table = summary_table(sub, args.rank)
    atomic_write(osp.join(args.out, 'subspace.md'), lambda f: f.write(table.encode()))
    print(table, end='')
    print(f'-> {osp.join(args.out, "subspace.png")}, subspace.csv, subspace.md')

