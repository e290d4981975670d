"""tools/analysis/* through their command lines, on mmdg configs (default_scope mmdg, custom_imports), the
procedural demo data and the real-format fixtures: print_config, get_flops, browse_dataset, analyze_logs,
confusion_matrix and spectrum (SoRA's update lies in the minor left singular subspace of the pre-trained
weight, PiSSA's in the principal one)."""
import csv
import json
import os

import numpy as np
import pytest
import torch

from conftest import REPO, invoke_tool

TOOLS = os.path.join(REPO, 'tools', 'analysis')


def _run(tool, *args, timeout=240):
    res = invoke_tool(os.path.join(TOOLS, tool), *args)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-4000:]
    return res.stdout


@pytest.fixture(scope='module')
def small_run(tmp_path_factory):
    """A 4-iteration SoRA run on a small demo dataset: a config, its work dir (json scalars log with lr,
    weight decay and per-domain mIoU every 2 iterations) and its last checkpoint."""
    from mmdg.apis.demo import demo_config
    from mmdg.datasets.synthetic import write_cityscapes_layout
    root = tmp_path_factory.mktemp('analysis')
    write_cityscapes_layout(str(root / 'data'), splits=dict(train=4, val=2), workers=1, progress=False)
    cfg = demo_config('sora', data_root=str(root / 'data'), max_iters=4, num_workers=0)
    cfg.train_dataloader.batch_size = 2
    cfg.train_cfg.val_interval = 2
    cfg.default_hooks.logger.interval = 1
    cfg.custom_hooks = list(cfg.get('custom_hooks') or []) + [dict(type='WeightDecayLoggerHook')]
    cfg.dump(str(root / 'cfg.py'))
    res = invoke_tool('train.py', root / 'cfg.py', '--work-dir', root / 'work')
    assert res.returncode == 0, res.stderr[-4000:]
    return root


@pytest.mark.tool
def test_print_config_merges_options(tmp_path):
    out = _run('print_config.py', 'configs/demo/sora.py', '--out', tmp_path / 'merged.py',
               '--cfg-options', 'model.backbone.adapter.r=4')
    assert "type='SoRA'" in out and 'r=4' in out
    from mmengine.config import Config
    cfg = Config.fromfile(str(tmp_path / 'merged.py'))
    assert cfg.model.backbone.adapter.r == 4 and cfg.default_scope == 'mmdg'


def test_get_flops_on_an_mmdg_config(tmp_path):
    out = _run('get_flops.py', 'configs/demo/sora.py', '--shape', 64, 128, '--out', tmp_path)
    assert 'backbone.vit.blocks' in out
    info = json.loads((tmp_path / 'flops.json').read_text())
    assert info['input'] == [1, 3, 64, 128] and info['flops'] > 1e6
    assert 0 < info['trainable_params'] < info['params']  # SoRA: most of the ViT frozen
    doc = open(os.path.join(REPO, 'docs', 'analysis.md')).read()  # the figures docs/analysis.md quotes
    assert (f'{info["flops"] / 1e6:.1f}M FLOPs, {info["params"]:,} parameters, {info["trainable_params"]:,} of\nthem '
            'trainable') in doc
    assert 'flops:' in (tmp_path / 'flops.md').read_text()


@pytest.mark.tool
def test_browse_dataset_draws_labels_per_domain(small_run, tmp_path):
    out = _run('browse_dataset.py', small_run / 'cfg.py', '--split', 'val', '--max', 1, '--out', tmp_path)
    import mmcv
    pictures = sorted(os.listdir(tmp_path))
    assert [p.split('_')[0] for p in pictures] == ['fog', 'night', 'rain', 'realistic', 'source'], out
    img = mmcv.imread(str(tmp_path / pictures[0]))
    h, w = img.shape[:2]
    left, right = img[:, : w // 2].astype(int), img[:, w // 2:].astype(int)
    assert w == 2 * h * 2 and np.abs(left - right).mean() > 5  # image | image with labels drawn


@pytest.mark.tool
def test_browse_dataset_show(small_run, tmp_path, monkeypatch):
    """--show puts each picture in a window, as mmseg's browse_dataset does; without a display it says so."""
    import mmcv
    monkeypatch.delenv('DISPLAY', raising=False)
    monkeypatch.delenv('WAYLAND_DISPLAY', raising=False)
    res = invoke_tool(os.path.join(TOOLS, 'browse_dataset.py'), small_run / 'cfg.py', '--show')
    assert res.returncode == 1 and '--show needs a display' in res.stderr
    shown = []
    monkeypatch.setattr(mmcv, 'imshow', lambda img, win_name='', wait_time=0: shown.append((win_name, wait_time)))
    res = invoke_tool(os.path.join(TOOLS, 'browse_dataset.py'), small_run / 'cfg.py', '--show', '--split', 'val',
                      '--max', 1, '--show-interval', 0.5, env=dict(DISPLAY=':0'))
    assert res.returncode == 0, res.stderr[-2000:]
    assert [name.split(':')[0] for name, _ in shown] == ['fog', 'night', 'rain', 'realistic', 'source']
    assert all(wait == 500 for _, wait in shown) and not list(tmp_path.iterdir())  # nothing written


def test_browse_dataset_on_real_cityscapes_labels(fixtures_dir, tmp_path):
    """A real Cityscapes frame with its converted train ids: the overlay colours are the palette colours
    of the classes the label file holds."""
    cs = os.path.join(fixtures_dir, 'cityscapes')
    _run('browse_dataset.py', 'configs/demo/full.py', '--out', tmp_path, '--opacity', 1.0, '--no-pipeline',
         '--cfg-options', f'train_dataloader.dataset.data_root={cs}',
         'train_dataloader.dataset.data_prefix.img_path=leftImg8bit/val',
         'train_dataloader.dataset.data_prefix.seg_map_path=gtFine/val')
    import mmcv
    from mmseg.datasets import CityscapesDataset
    (picture,) = os.listdir(tmp_path)
    img = mmcv.bgr2rgb(mmcv.imread(str(tmp_path / picture)))
    label_file = [os.path.join(dp, f) for dp, _, fs in os.walk(os.path.join(cs, 'gtFine', 'val')) for f in fs
                  if f.endswith('labelTrainIds.png')][0]
    label = mmcv.imread(label_file, flag='unchanged')
    drawn = img[:, img.shape[1] // 2:]
    palette = CityscapesDataset.METAINFO['palette']
    road = label == 0
    assert road.sum() > 100
    # most road pixels carry the road colour (text labels cover a few)
    hits = (np.abs(drawn[road].astype(int) - palette[0]).sum(1) < 10).mean()
    assert hits > 0.8, hits


@pytest.mark.tool
def test_analyze_logs_plots_loss_lr_wd_and_domains(small_run, tmp_path):
    out = _run('analyze_logs.py', small_run / 'work', '--out', tmp_path / 'curves.png', '--csv', tmp_path / 'c.csv')
    assert 'weight_decay' in out and 'validation mIoU per domain' in out
    assert (tmp_path / 'curves.png').stat().st_size > 10_000
    rows = list(csv.DictReader(open(tmp_path / 'c.csv')))
    keys = {r['key'] for r in rows}
    assert {'loss', 'lr', 'fog/mIoU', 'mean/mIoU'} <= keys and any('weight_decay' in k for k in keys)
    assert sorted({int(r['step']) for r in rows if r['key'] == 'fog/mIoU'}) == [2, 4]
    assert sorted(int(r['step']) for r in rows if r['key'] == 'loss') == [1, 2, 3, 4]


@pytest.mark.tool
def test_confusion_matrix_per_domain(small_run, tmp_path):
    _run('confusion_matrix.py', small_run / 'cfg.py', small_run / 'work' / 'iter_4.pth', '--targets', 'fog', 'source',
         '--out', tmp_path)
    for dom in ('fog', 'source'):
        assert (tmp_path / f'confusion_{dom}.png').stat().st_size > 10_000
        rows = list(csv.reader(open(tmp_path / f'confusion_{dom}.csv')))
        counts = np.array([[int(x) for x in r[1:]] for r in rows[1:]])
        assert counts.shape == (19, 19)
        # every labelled pixel of the domain's 2 images is counted once
        import mmcv
        labels = [os.path.join(dp, f) for dp, _, fs in os.walk(small_run / 'data' / dom / 'gtFine' / 'val')
                  for f in fs if f.endswith('labelTrainIds.png')]
        want = sum(int((mmcv.imread(p, flag='unchanged') != 255).sum()) for p in labels)
        assert counts.sum() == want
    assert '| fog | 2 |' in (tmp_path / 'confusion.md').read_text()


@pytest.fixture(scope='module')
def spectrum_runs(tmp_path_factory):
    """A tiny random 'pre-trained' ViT (the demo architecture) and three trained checkpoints: SoRA and
    PiSSA with only their A factors moved (so dW = s * B dA lies in B's column space), full with every
    weight moved at random."""
    from mmengine.config import Config
    from mmengine.registry import init_default_scope
    from mmdg.convert.vit import build_timm_vit
    root = tmp_path_factory.mktemp('spectrum')
    torch.manual_seed(0)
    vit = build_timm_vit('vit_small_patch14_dinov2', img_size=(128, 256), patch_size=16, embed_dim=192, depth=6,
                         num_heads=3, init_values=1e-5)
    torch.save(vit.state_dict(), root / 'pre.pth')
    init_default_scope('mmdg')
    from mmdg.registry import MODELS
    for method in ('sora', 'pissa', 'full'):
        cfg = Config.fromfile(os.path.join(REPO, 'configs', 'demo', f'{method}.py'))
        cfg.model.backbone.pretrained = str(root / 'pre.pth')
        cfg.dump(str(root / f'{method}.py'))
        model = MODELS.build(cfg.model)
        with torch.no_grad():
            for n, p in model.backbone.named_parameters():
                if p.requires_grad and ('lora_A' in n or (method == 'full' and p.dim() == 2)):
                    p.add_(torch.randn_like(p) * 0.01)
        torch.save(dict(state_dict=model.state_dict(), meta={}), root / f'{method}.pth')
    return root


def test_spectrum_of_a_pretrained_vit(spectrum_runs, tmp_path):
    out = _run('spectrum.py', '--arch', 'vit_small_patch14_dinov2', '--pretrained', spectrum_runs / 'pre.pth',
               '--img-size', 128, 256, '--patch-size', 16, '--model-kwargs', 'embed_dim=192', 'depth=6',
               'num_heads=3', 'init_values=1e-5', '--rank', 8, '--out', tmp_path)
    assert 'spectrum of 36 matrices' in out
    rows = list(csv.DictReader(open(tmp_path / 'spectrum.csv')))
    assert len(rows) == 36 * 192
    # the values are the pre-trained weight's: block 2's q slice of the fused qkv
    w = torch.load(spectrum_runs / 'pre.pth')['blocks.2.attn.qkv.weight'][:192]
    got = [float(r['singular_value']) for r in rows if r['block'] == '2' and r['layer'] == 'q']
    np.testing.assert_allclose(got, torch.linalg.svdvals(w.double()).numpy(), rtol=1e-4)
    assert (tmp_path / 'spectrum.png').stat().st_size > 10_000


@pytest.mark.tool
def test_spectrum_subspace_of_trained_runs(spectrum_runs, tmp_path):
    r = spectrum_runs
    out = _run('spectrum.py', '--config', r / 'sora.py', '--rank', 8, '--out', tmp_path,
               '--run', 'sora', r / 'sora.py', r / 'sora.pth', '--run', 'pissa', r / 'pissa.py', r / 'pissa.pth',
               '--run', 'full', r / 'full.py', r / 'full.pth')
    assert '| sora |' in out
    rows = list(csv.DictReader(open(tmp_path / 'subspace.csv')))
    by = {}
    for row in rows:
        by.setdefault(row['method'], []).append(row)
    from mmengine.config import Config
    first, stop = Config.fromfile(str(r / 'sora.py')).model.backbone.adapter.blocks
    # q, k, v (split from qkv), proj, fc1, fc2 in each adapted block (the demo recipe adapts blocks 2-5)
    assert {len(v) for v in by.values()} == {6 * (stop - first)}
    assert {int(row['block']) for row in by['sora']} == set(range(first, stop))
    assert {row['layer'] for row in by['sora']} == {'q', 'k', 'v', 'proj', 'fc1', 'fc2'}
    f = lambda m, k: np.array([float(row[k]) for row in by[m]])  # noqa: E731
    assert f('sora', 'left_bottom').min() > 0.999 and f('sora', 'left_top').max() < 1e-3
    assert f('pissa', 'left_top').min() > 0.999 and f('pissa', 'left_bottom').max() < 1e-3
    chance = f('full', 'chance')
    assert np.all(np.abs(f('full', 'left_bottom') - chance) < 0.05)  # a random update: no preference
    spec = list(csv.DictReader(open(tmp_path / 'spectrum.csv')))
    assert len(spec) == 36 * 192  # every matrix has min(d_out, d_in) = 192 singular values
    assert (tmp_path / 'subspace.png').stat().st_size > 10_000


@pytest.mark.tool
def test_browse_dataset_draws_boxes_of_a_detection_config(tmp_path):
    """Detection configs use mmdet's visualizer: boxes of the VOC annotations drawn on the right half."""
    from mmdg.apis.demo_det import demo_det_config
    from mmdg.datasets.voc_writer import write_synthetic_voc
    write_synthetic_voc(str(tmp_path / 'dwd'), splits=dict(train=1, test=1), size=(128, 256))
    demo_det_config('full', data_root=str(tmp_path / 'dwd'), max_iters=1, num_workers=0).dump(str(tmp_path / 'det.py'))
    _run('browse_dataset.py', tmp_path / 'det.py', '--split', 'target', '--domain', 'night', '--max', 1,
         '--out', tmp_path / 'out')
    import mmcv
    (picture,) = os.listdir(tmp_path / 'out')
    img = mmcv.imread(str(tmp_path / 'out' / picture)).astype(int)
    w = img.shape[1]
    assert picture.startswith('night_') and np.abs(img[:, : w // 2] - img[:, w // 2:]).max() > 100


def test_svd_time_reports_each_shape_and_the_start_up():
    out = _run('svd_time.py', '--dim', 64, '--hidden', 128, '--mlp', 'swiglu', '--blocks', 3, timeout=120)
    assert '64x64:' in out and '128x64:' in out and '64x128:' in out
    assert 'q, k, v in one batched call' in out and '3 adapted blocks:' in out


def test_inference_benchmark_of_a_checkpoint(demo_model):
    """tools/analysis/benchmark.py CONFIG CHECKPOINT, as mmseg's: per-image progress and the overall fps."""
    config, ckpt, _ = demo_model
    out = _run('benchmark.py', config, ckpt, '--images', 1, '--warmup', 1, '--repeat-times', 2)
    assert 'Done image [1/1], fps:' in out and 'Overall fps:' in out and ' ± ' in out
    res = invoke_tool(os.path.join(TOOLS, 'benchmark.py'), config, ckpt, '--warmup', 5)
    assert res.returncode == 1 and 'fewer than the 5 warm-up ones' in res.stderr
