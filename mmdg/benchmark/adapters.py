"""The adapter suite: a bare timm ViT per method (ViT-B; SoRA vs full on ViT-L with blocks 0-7 frozen):
training-step time and peak memory, our LoRA against PEFT's on the same shapes, merged vs unmerged vs plain
inference, and SoRA's SVD initialisation. ``tools/benchmark.py --suite adapters`` runs it.

Step = forward + backward + AdamW step of the ViT plus a linear probe on its tokens. Every training row runs in
a process of its own, round-robin over the rounds; the three inference variants are timed step by step in
turn (plain, unmerged, merged, plain, ...) in one process, so that each ratio compares like with like.
"""
import statistics
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


def measure_vit_train(method, arch, img, batch, device, steps, warmup, frozen_blocks=0):
    import torch
    torch.manual_seed(0)
    vit, head = _build(method, arch, img, device, frozen_blocks)
    params = [p for p in list(vit.parameters()) + list(head.parameters()) if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-4)
    x = torch.randn(batch, 3, img, img, device=device)
    if device.startswith('cuda'):
        torch.cuda.reset_peak_memory_stats()
    else:
        release_freed_heap()  # what model building freed (SoRA's SVD workspaces) must not count
    times = []
    with RssSampler() as sampler:
        for i in range(warmup + steps):
            sync(device)
            t = time.perf_counter()
            feats = vit.forward_features(x) if hasattr(vit, 'forward_features') else vit(x)
            head(feats).float().pow(2).mean().backward()
            opt.step()
            opt.zero_grad(set_to_none=True)
            sync(device)
            if i >= warmup:
                times.append(time.perf_counter() - t)
    peak = torch.cuda.max_memory_allocated() / 2 ** 20 if device.startswith('cuda') else sampler.peak
    return dict(step_ms=1000 * statistics.median(times), peak_mb=peak, trainable=sum(p.numel() for p in params))


def measure_vit_inference(arch, img, batch, device, steps, warmup):
    """Plain ViT, SoRA unmerged, SoRA merged: one forward of each in turn per step, so the three see the same
    machine state; medians per variant and the median of the per-step ratios to plain."""
    import copy

    import timm
    import torch

    from mmdg.adapters import inject_adapters, merge_adapters
    torch.manual_seed(0)
    x = torch.randn(batch, 3, img, img, device=device)
    plain = timm.create_model(arch, pretrained=False, num_classes=0, img_size=img, patch_size=16).to(device).eval()
    unmerged = copy.deepcopy(plain)
    inject_adapters(unmerged, dict(type='SoRA', r=16, alpha=16))
    merged = merge_adapters(copy.deepcopy(unmerged))
    variants = dict(plain=plain, unmerged=unmerged, merged=merged)
    times = {k: [] for k in variants}
    with torch.no_grad():
        for i in range(warmup + steps):
            for name, model in variants.items():
                sync(device)
                t = time.perf_counter()
                model(x)
                sync(device)
                if i >= warmup:
                    times[name].append(time.perf_counter() - t)
    out = {f'{k}_ms': 1000 * statistics.median(v) for k, v in times.items()}
    for k in ('unmerged', 'merged'):
        out[f'{k}_over_plain'] = statistics.median(a / b for a, b in zip(times[k], times['plain']))
    return out


def measure_vit_svd(device):
    import timm

    from mmdg.adapters import inject_adapters
    vit = timm.create_model(VIT_L, pretrained=False, num_classes=0, img_size=512, patch_size=16).to(device)
    sync(device)
    t = time.perf_counter()
    inject_adapters(vit, dict(type='SoRA', r=16, alpha=16, blocks=(8, 24)))
    sync(device)
    return dict(svd_init_s=time.perf_counter() - t)


MEASURES = dict(vit_train=measure_vit_train, vit_inference=measure_vit_inference, vit_svd=measure_vit_svd)
#: What ``--skip`` can leave out of this suite: the ViT-L rows (SoRA vs full), inference, the SVD timing.
SECTIONS = ('large', 'inference', 'svd')


def run_suite(o, run, log, save) -> dict:
    """The adapter suite for the options ``o`` of ``tools/benchmark.py --suite adapters``."""
    import os

    import torch

    from mmdg.benchmark.rounds import paired_ratio, round_robin, summarize
    env = (f'device {o.device}' + (f' ({torch.cuda.get_device_name()})' if o.device.startswith('cuda') else
                                   f' ({os.cpu_count()} cores)') + f', torch {torch.__version__}')
    res = dict(env=env, args=dict(vars(o)))
    timing = dict(device=o.device, steps=o.steps, warmup=o.warmup)
    methods = [m for m in METHODS if m in o.methods]
    arch = getattr(o, 'arch', VIT_B)
    raw = round_robin(methods, lambda m: dict(kind='vit_train', method=m, arch=arch, img=o.img, batch=o.batch,
                                              **timing), o.rounds, run, log)
    res['vit_b'] = {m: summarize(v) for m, v in raw.items()}
    ratios = {}
    for m in methods:
        for base in ('frozen', 'full'):
            if base in raw:
                ratios[f'{m}/{base}'] = {f: paired_ratio(raw[m], raw[base], f) for f in ('step_ms', 'peak_mb')}
    if 'LoRA-fused' in raw and 'PEFT-LoRA' in raw:
        ratios['LoRA-fused/PEFT-LoRA'] = {f: paired_ratio(raw['LoRA-fused'], raw['PEFT-LoRA'], f)
                                          for f in ('step_ms', 'peak_mb')}
    res['vit_b_ratios'] = ratios
    save(res)
    if 'large' not in o.skip:
        large = round_robin(['full', 'SoRA'], lambda m: dict(kind='vit_train', method=m, arch=VIT_L, img=o.large_img,
                                                             batch=o.large_batch, frozen_blocks=8, **timing),
                            o.rounds, run, log)
        res['vit_l'] = {m: summarize(v) for m, v in large.items()}
        res['vit_l_ratios'] = {f: paired_ratio(large['SoRA'], large['full'], f) for f in ('step_ms', 'peak_mb')}
        save(res)
    if 'inference' not in o.skip:
        log('inference ...')
        res['inference'] = summarize([run(dict(kind='vit_inference', arch=arch, img=o.img, batch=o.batch, **timing))
                                      for _ in range(o.rounds)])
    if 'svd' not in o.skip:
        log('SoRA SVD init on ViT-L ...')
        res['svd'] = run(dict(kind='vit_svd', device=o.device))
        save(res)
    return res


def _r(ratio: dict, fmt: str = '{:.2f}') -> str:
    if not ratio:
        return '-'
    lo, hi = ratio['range']
    return fmt.format(ratio['median']) + (f' ({fmt.format(lo)}-{fmt.format(hi)})' if ratio['rounds'] > 1 else '')


def report(res) -> str:
    b, a, ratios = res['vit_b'], res['args'], res.get('vit_b_ratios', {})
    vit = 'ViT-B (DINOv2-B, patch 16)' if a.get('arch', VIT_B) == VIT_B else a['arch']
    lines = [f'Run: {res["env"]}; {vit} {a["img"]} px, batch {a["batch"]}; each row the median '
             f'over {a["rounds"]} round-robin round(s) of the median of {a["steps"]} steps after {a["warmup"]} '
             'warm-up; ratios are medians of per-round ratios (range in brackets).', '',
             '| method | trainable | step ms | x frozen | x full | peak MB | x frozen | x full |',
             '|---|---:|---:|---:|---:|---:|---:|---:|']
    for m, r in b.items():
        if 'error' in r:
            lines.append(f'| {m} | {r["error"][:60]} | | | | | | |')
            continue
        q = ratios.get(f'{m}/frozen', {}), ratios.get(f'{m}/full', {})
        lines.append(f'| {m} | {r["trainable"]:,} | {r["step_ms"]:.0f} | {_r(q[0].get("step_ms"))} | '
                     f'{_r(q[1].get("step_ms"))} | {r["peak_mb"]:.0f} | {_r(q[0].get("peak_mb"))} | '
                     f'{_r(q[1].get("peak_mb"))} |')
    lines.append('')
    peft = ratios.get('LoRA-fused/PEFT-LoRA', {}).get('step_ms')
    lines.append(f'Our LoRA (fused qkv, same shapes as PEFT) / PEFT LoRA step time: **{_r(peft)}** (target <= 1.0).'
                 if peft else 'PEFT LoRA: not measured (peft not installed).')
    L = res.get('vit_l_ratios', {})
    if L.get('step_ms'):
        lines.append(f'ViT-L (DINOv2-L, patch 16, {a["large_img"]} px, batch {a["large_batch"]}), blocks 0-7 frozen: '
                     f'SoRA / full step time **{_r(L["step_ms"])}** (target <= 0.6), peak memory '
                     f'**{_r(L.get("peak_mb"))}** (target <= 0.5).')
    inf = res.get('inference', {})
    if inf and 'error' not in inf:
        lines.append(f'Inference, {"ViT-B" if a.get("arch", VIT_B) == VIT_B else a["arch"]}: plain {inf["plain_ms"]:.1f} ms, SoRA unmerged {inf["unmerged_ms"]:.1f} ms '
                     f'({inf["unmerged_over_plain"]:.2f}x), merged {inf["merged_ms"]:.1f} ms '
                     f'(**{inf["merged_over_plain"]:.2f}x**, target <= 1.02; per-step ratios, variants in turn).')
    if 'error' not in res.get('svd', {'error': 1}):
        lines.append(f'SoRA SVD initialisation, DINOv2-L blocks 8-23 (96 matrices): {res["svd"]["svd_init_s"]:.1f} s.')
    return '\n'.join(lines)
