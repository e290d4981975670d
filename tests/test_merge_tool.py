"""tools/merge_adapters.py: the merged checkpoint loads into the plain config and predicts the same, for
every adapter, for adapter-only checkpoints and for detectors; its refusals leave nothing behind."""
import json

import pytest
import torch
from mmengine.config import Config
from mmengine.runner import Runner

from conftest import invoke_tool
from mmdg.apis.demo import demo_config


def _merge(*args):
    return invoke_tool('merge_adapters.py', *args)


def _trained(tmp_path, demo_data, method, **kw):
    cfg = demo_config(method, data_root=demo_data, work_dir=str(tmp_path / 'work'), max_iters=2, num_workers=0, **kw)
    cfg.train_dataloader.batch_size = 2
    return cfg


def _train(cfg, tmp_path):
    cfg.dump(str(tmp_path / 'cfg.py'))
    Runner.from_cfg(cfg).train()
    return str(tmp_path / 'cfg.py'), str(tmp_path / 'work' / 'iter_2.pth')


def _moved(cfg, tmp_path):
    """The config's model with every trainable tensor moved off its initial value (as training moves the
    adapters off their no-op start), saved as a checkpoint: what merging needs, in a second instead of a run."""
    from mmengine.registry import init_default_scope
    init_default_scope('mmdg')
    from mmdg.registry import MODELS
    model = MODELS.build(cfg.model)
    with torch.no_grad():
        for p in model.parameters():
            if p.requires_grad:
                p.add_(0.02 * torch.randn_like(p))
    cfg.dump(str(tmp_path / 'cfg.py'))
    torch.save(dict(state_dict=model.state_dict(), meta={}), tmp_path / 'moved.pth')
    return str(tmp_path / 'cfg.py'), str(tmp_path / 'moved.pth')


@pytest.mark.parametrize('method', ['sora', 'lora', 'pissa', 'alore', 'hta', 'clora'])
@pytest.mark.tool
def test_merged_checkpoint_predicts_like_the_adapted_model(method, tmp_path, demo_data):
    from mmdg.adapters import adapter_modules
    from mmdg.apis.merge import build_model, plain_config
    cfg_path, ckpt = _moved(_trained(tmp_path, demo_data, method), tmp_path)
    out = tmp_path / 'merged.pth'
    res = _merge(cfg_path, ckpt, out)
    assert res.returncode == 0, res.stderr[-3000:]
    assert 'merged' in res.stdout and out.exists()
    assert len(res.stdout.splitlines()) == 1, res.stdout[:2000]  # no per-parameter init lines (989 before)
    cfg = Config.fromfile(cfg_path)
    adapted = build_model(cfg, ckpt)
    plain = build_model(plain_config(cfg), str(out))
    assert adapter_modules(adapted) and not adapter_modules(plain)
    x = torch.randn(2, 3, 96, 160)
    with torch.no_grad():
        a, b = adapted(x, mode='tensor'), plain(x, mode='tensor')
    torch.testing.assert_close(b, a, rtol=1e-4, atol=1e-4 * a.abs().max().item())
    assert (a.argmax(1) == b.argmax(1)).float().mean() > 0.999


@pytest.mark.tool
def test_adapter_only_checkpoint_merges_and_evaluates_the_same(tmp_path, demo_data):
    """An adapter-only SoRA checkpoint (over a local 'pre-trained' file) merges; cross_domain_eval on the
    merged file (same config: it sees the merge in the checkpoint's meta) gives the same mIoU."""
    from mmdg.convert.vit import build_timm_vit
    pre = build_timm_vit('vit_small_patch14_dinov2', img_size=(128, 256), patch_size=16, embed_dim=192, depth=6,
                         num_heads=3, init_values=1e-5)
    torch.save(pre.state_dict(), tmp_path / 'pretrained.pth')
    cfg = _trained(tmp_path, demo_data, 'sora', pretrained=str(tmp_path / 'pretrained.pth'))
    cfg.custom_hooks = cfg.custom_hooks + [dict(type='AdapterCheckpointHook')]
    cfg_path, ckpt = _train(cfg, tmp_path)
    assert torch.load(ckpt, weights_only=False)['meta']['mmdg_adapter_only']
    out = tmp_path / 'merged.pth'
    res = _merge(cfg_path, ckpt, out)
    assert res.returncode == 0, res.stderr[-3000:]
    mious = []
    for name, path in (('adapter_only', ckpt), ('merged', out)):
        ev = invoke_tool('cross_domain_eval.py', cfg_path, path, '--targets', 'night', '--overlays', '0', '--out-dir', tmp_path / name)
        assert ev.returncode == 0, ev.stderr[-3000:]
        mious.append(json.load(open(tmp_path / name / 'results.json'))['results']['night']['mIoU'])
    assert 'holds merged weights' in ev.stdout
    assert mious[0] == pytest.approx(mious[1], abs=0.05)


@pytest.mark.tool
def test_detector_merge(tmp_path):
    from mmdg.apis.demo_det import demo_det_config
    from mmdg.apis.merge import build_model, plain_config
    from mmdg.datasets.voc_writer import write_synthetic_voc
    write_synthetic_voc(str(tmp_path / 'dwd'), splits=dict(train=4, test=2), size=(64, 128))
    cfg = demo_det_config('lora', data_root=str(tmp_path / 'dwd'), work_dir=str(tmp_path / 'work'), max_iters=2,
                          num_workers=0)
    cfg_path, ckpt = _moved(cfg, tmp_path)
    out = tmp_path / 'merged_det.pth'
    res = _merge(cfg_path, ckpt, out)
    assert res.returncode == 0, res.stderr[-3000:]
    cfg = Config.fromfile(cfg_path)
    adapted, plain = build_model(cfg, ckpt), build_model(plain_config(cfg), str(out))
    x = torch.randn(1, 3, 64, 128)
    with torch.no_grad():
        for a, b in zip(adapted.extract_feat(x), plain.extract_feat(x)):
            torch.testing.assert_close(b, a, rtol=1e-4, atol=1e-4 * a.abs().max().item())
    assert torch.equal(adapted.roi_head.bbox_head.fc_cls.weight, plain.roi_head.bbox_head.fc_cls.weight)


@pytest.mark.tool
def test_refusals_and_backbone_export(tmp_path, demo_data):
    cfg_path, ckpt = _moved(_trained(tmp_path, demo_data, 'lora'), tmp_path)
    before = open(ckpt, 'rb').read()
    res = _merge(cfg_path, ckpt, ckpt)
    assert res.returncode != 0 and 'refusing to overwrite the input checkpoint' in res.stderr
    assert open(ckpt, 'rb').read() == before

    out = tmp_path / 'never.pth'
    res = _merge(cfg_path, ckpt, out, '--rtol', '-1')  # any difference is too much: the check must refuse
    assert res.returncode != 0 and 'nothing written' in res.stderr and not out.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith('.mmdg-tmp-')]

    res = _merge(cfg_path, ckpt, tmp_path / 'vit.pth', '--backbone-only', 'official')
    assert res.returncode == 0, res.stderr[-2000:]
    state = torch.load(tmp_path / 'vit.pth', weights_only=True)
    assert 'blocks.0.attn.qkv.weight' in state and 'mask_token' in state
    assert not any('lora' in k or 'base.' in k for k in state)

    res = _merge(cfg_path, ckpt, tmp_path / 'vit_timm.pth', '--backbone-only', 'timm')
    assert res.returncode == 0, res.stderr[-2000:]
    from mmdg.convert.vit import build_timm_vit
    vit = build_timm_vit('vit_small_patch14_dinov2', img_size=(128, 256), patch_size=16, embed_dim=192, depth=6,
                         num_heads=3, init_values=1e-5)
    vit.load_state_dict(torch.load(tmp_path / 'vit_timm.pth', weights_only=True), strict=True)  # a bare timm ViT

    # a checkpoint of another architecture (here: the bare ViT) is named as such, without a traceback
    res = _merge(cfg_path, tmp_path / 'vit_timm.pth', tmp_path / 'x.pth')
    assert res.returncode != 0 and 'does not fit this model' in res.stderr and 'Traceback' not in res.stderr
    assert not (tmp_path / 'x.pth').exists()

    full_cfg = Config.fromfile(cfg_path)
    full_cfg.model.backbone.adapter = None
    full_cfg.dump(str(tmp_path / 'plain.py'))
    res = _merge(tmp_path / 'plain.py', tmp_path / 'merged_for_nothing.pth', tmp_path / 'y.pth')
    assert res.returncode != 0 and 'does not exist' in res.stderr
    res = _merge(tmp_path / 'plain.py', ckpt, tmp_path / 'y.pth')
    assert res.returncode != 0 and 'does not fit' in res.stderr  # adapter keys in a model without adapters
