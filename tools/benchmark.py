"""Adapter benchmark: training-step time and peak memory per method, merged vs unmerged inference,
SoRA's SVD initialisation time. Results go to docs/benchmarks.md.

    python tools/benchmark.py                       # CPU-sized: ViT-B at 112 px, batch 2
    python tools/benchmark.py --device cuda --img 512 --batch 4 --large-img 512   # full size on a GPU

Every measurement runs in a fresh subprocess so that peak memory is its own (CUDA: max allocated;
CPU: peak resident set size during the training steps, weights included). Times are medians over --steps steps after --warmup steps. PEFT's LoRA
is measured when `peft` is installed (`pip install peft`), with the same timm model, targets and rank.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

from mmdg.adapters import ADAPTERS
from mmdg.utils.profiling import RssSampler, release_freed_heap, sync

VIT_B = 'vit_base_patch14_dinov2'
VIT_L = 'vit_large_patch14_dinov2'
TARGETS = ('qkv', 'proj', 'fc1', 'fc2')
#: The baselines and every linear adapter of the registry; LoRA also fused (the shapes PEFT adapts) and as PEFT's.
METHODS = ['frozen', 'full', *(v for n, c in ADAPTERS.items() if c.target_kind == 'linear'
                               for v in ((n, 'LoRA-fused', 'PEFT-LoRA') if n == 'LoRA' else (n,)))]


def _build(method, arch, img, device, frozen_blocks=0):
    import timm
    import torch
    from mmdg.adapters import inject_adapters
    vit = timm.create_model(arch, pretrained=False, num_classes=0, img_size=img, patch_size=16).to(device)
    if method == 'frozen':
        vit.requires_grad_(False)
        head = torch.nn.Linear(vit.num_features, 19).to(device)  # something to train
        return vit, head
    if method == 'full':
        for i, blk in enumerate(vit.blocks):
            blk.requires_grad_(i >= frozen_blocks)
        if frozen_blocks:
            vit.patch_embed.requires_grad_(False)
            vit.pos_embed.requires_grad_(False)
            vit.cls_token.requires_grad_(False)
    elif method == 'PEFT-LoRA':
        from peft import LoraConfig, get_peft_model
        vit = get_peft_model(vit, LoraConfig(r=16, lora_alpha=16, target_modules=list(TARGETS), lora_dropout=0.0))
    elif method == 'LoRA-fused':  # the same shapes PEFT adapts: one rank-16 pair on the fused qkv
        inject_adapters(vit, dict(type='LoRA', r=16, alpha=16, targets=TARGETS, split_qkv=False))
    else:
        cfg = dict(type=method)
        if method in ('LoRA', 'PiSSA', 'SoRA'):
            cfg.update(r=16, alpha=16, targets=TARGETS)
        if frozen_blocks:
            cfg['blocks'] = (frozen_blocks, len(vit.blocks))
        inject_adapters(vit, cfg)
    return vit, torch.nn.Linear(vit.num_features, 19).to(device)


def measure_train(method, arch, img, batch, device, steps, warmup, frozen_blocks=0):
    import torch
    torch.manual_seed(0)
    vit, head = _build(method, arch, img, device, frozen_blocks)
    params = [p for p in list(vit.parameters()) + list(head.parameters()) if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-4)
    x = torch.randn(batch, 3, img, img, device=device)
    if device.startswith('cuda'):
        torch.cuda.reset_peak_memory_stats()
    times = []
    if not device.startswith('cuda'):
        release_freed_heap()  # what model building freed (SoRA's SVD workspaces) must not count
    sampler = RssSampler()
    with sampler:
        _train_steps(vit, head, opt, x, device, steps, warmup, times)
    peak = torch.cuda.max_memory_allocated() / 2 ** 20 if device.startswith('cuda') else sampler.peak
    return dict(step_ms=1000 * statistics.median(times), peak_mb=peak, trainable=sum(p.numel() for p in params))


def _train_steps(vit, head, opt, x, device, steps, warmup, times):
    for i in range(warmup + steps):
        sync(device)
        t = time.perf_counter()
        feats = vit.forward_features(x) if hasattr(vit, 'forward_features') else vit(x)
        loss = head(feats).float().pow(2).mean()
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        sync(device)
        if i >= warmup:
            times.append(time.perf_counter() - t)


def measure_inference(arch, img, batch, device, steps, warmup):
    import timm
    import torch
    from mmdg.adapters import inject_adapters, merge_adapters
    torch.manual_seed(0)
    x = torch.randn(batch, 3, img, img, device=device)
    plain = timm.create_model(arch, pretrained=False, num_classes=0, img_size=img, patch_size=16).to(device).eval()
    adapted = timm.create_model(arch, pretrained=False, num_classes=0, img_size=img, patch_size=16).to(device).eval()
    adapted.load_state_dict(plain.state_dict())
    inject_adapters(adapted, dict(type='SoRA', r=16, alpha=16))

    def timeit(model):
        ts = []
        with torch.no_grad():
            for i in range(warmup + steps):
                sync(device)
                t = time.perf_counter()
                model(x)
                sync(device)
                if i >= warmup:
                    ts.append(time.perf_counter() - t)
        return 1000 * statistics.median(ts)

    out = dict(plain_ms=timeit(plain), unmerged_ms=timeit(adapted))
    merge_adapters(adapted)
    out['merged_ms'] = timeit(adapted)
    out['plain_ms_again'] = timeit(plain)  # order effects (caches, clocks) show up as a gap here
    return out


def measure_svd(device):
    import timm
    from mmdg.adapters import inject_adapters
    vit = timm.create_model(VIT_L, pretrained=False, num_classes=0, img_size=512, patch_size=16).to(device)
    sync(device)
    t = time.perf_counter()
    inject_adapters(vit, dict(type='SoRA', r=16, alpha=16, blocks=(8, 24)))
    sync(device)
    return dict(svd_init_s=time.perf_counter() - t)


def _child(kind, args, **kw):
    cmd = [sys.executable, __file__, '--child', json.dumps(dict(kind=kind, **kw)), '--device', args.device,
           '--steps', str(args.steps), '--warmup', str(args.warmup)]
    res = subprocess.run(cmd, capture_output=True, text=True)
    if res.returncode:
        return dict(error=(res.stderr.strip().splitlines() or ['failed'])[-1])
    return json.loads(res.stdout.strip().splitlines()[-1])


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--device', default='cpu')
    p.add_argument('--img', type=int, default=112, help='ViT-B input size')
    p.add_argument('--batch', type=int, default=2)
    p.add_argument('--large-img', type=int, default=112, help='ViT-L input size (SoRA vs full, blocks 0-7 frozen)')
    p.add_argument('--large-batch', type=int, default=1)
    p.add_argument('--steps', type=int, default=5)
    p.add_argument('--warmup', type=int, default=2)
    p.add_argument('--json', help='also write the raw results here')
    p.add_argument('--child', help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        job = json.loads(args.child)
        kind = job.pop('kind')
        fn = dict(train=measure_train, inference=measure_inference, svd=measure_svd)[kind]
        print(json.dumps(fn(**job, device=args.device, **({} if kind == 'svd' else
                                                          dict(steps=args.steps, warmup=args.warmup)))))
        return

    import torch
    env = (f'device {args.device}' + (f' ({torch.cuda.get_device_name()})' if args.device.startswith('cuda') else
                                      f' ({os.cpu_count()} cores)') + f', torch {torch.__version__}')
    res = dict(env=env, args=vars(args), vit_b={}, vit_l={})
    for m in METHODS:
        print(f'ViT-B {m} ...', file=sys.stderr)
        res['vit_b'][m] = _child('train', args, method=m, arch=VIT_B, img=args.img, batch=args.batch)
    for m in ('full', 'SoRA'):
        print(f'ViT-L {m} (blocks 0-7 frozen) ...', file=sys.stderr)
        res['vit_l'][m] = _child('train', args, method=m, arch=VIT_L, img=args.large_img, batch=args.large_batch,
                                 frozen_blocks=8)
    print('inference ...', file=sys.stderr)
    res['inference'] = _child('inference', args, arch=VIT_B, img=args.img, batch=args.batch)
    print('SoRA SVD init on ViT-L ...', file=sys.stderr)
    res['svd'] = _child('svd', args)
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(res, f, indent=1)
    print(report(res))


def report(res) -> str:
    b = res['vit_b']
    a = res['args']
    lines = [f'Run: {res["env"]}; ViT-B (DINOv2-B, patch 16) {a["img"]} px, batch {a["batch"]}; '
             f'median of {a["steps"]} steps after {a["warmup"]} warm-up.', '',
             '| method | trainable | step ms | x frozen | x full | peak MB | x frozen | x full |',
             '|---|---:|---:|---:|---:|---:|---:|---:|']
    fz, fu = b['frozen'], b['full']
    for m, r in b.items():
        if 'error' in r:
            lines.append(f'| {m} | {r["error"][:60]} | | | | | | |')
            continue
        lines.append(f'| {m} | {r["trainable"]:,} | {r["step_ms"]:.0f} | {r["step_ms"] / fz["step_ms"]:.2f} | '
                     f'{r["step_ms"] / fu["step_ms"]:.2f} | {r["peak_mb"]:.0f} | {r["peak_mb"] / fz["peak_mb"]:.2f} | '
                     f'{r["peak_mb"] / fu["peak_mb"]:.2f} |')
    lines.append('')
    if 'error' not in b.get('PEFT-LoRA', {'error': 1}):
        lines.append(f'Our LoRA (fused qkv, same shapes as PEFT) / PEFT LoRA step time: '
                     f'**{b["LoRA-fused"]["step_ms"] / b["PEFT-LoRA"]["step_ms"]:.2f}** (target <= 1.0).')
    else:
        lines.append('PEFT LoRA: not measured (peft not installed).')
    L = res['vit_l']
    if 'error' not in L['SoRA'] and 'error' not in L['full']:
        lines.append(f'ViT-L (DINOv2-L, patch 16, {a["large_img"]} px, batch {a["large_batch"]}), blocks 0-7 frozen: '
                     f'SoRA / full step time **{L["SoRA"]["step_ms"] / L["full"]["step_ms"]:.2f}** (target <= 0.6), '
                     f'peak memory **{L["SoRA"]["peak_mb"] / L["full"]["peak_mb"]:.2f}** (target <= 0.5).')
    inf = res['inference']
    if 'error' not in inf:
        plain = min(inf['plain_ms'], inf['plain_ms_again'])
        lines.append(f'Inference, ViT-B: plain {plain:.1f} ms, SoRA unmerged {inf["unmerged_ms"]:.1f} ms '
                     f'({inf["unmerged_ms"] / plain:.2f}x), merged {inf["merged_ms"]:.1f} ms '
                     f'(**{inf["merged_ms"] / plain:.2f}x**, target <= 1.02).')
    if 'error' not in res['svd']:
        lines.append(f'SoRA SVD initialisation, DINOv2-L blocks 8-23 (96 matrices): {res["svd"]["svd_init_s"]:.1f} s.')
    return '\n'.join(lines)


if __name__ == '__main__':
    main()
