"""Adapter-only checkpoints: small, and they rebuild the identical trained segmentor on a fresh backbone."""
import pytest
import torch
from mmengine.runner import Runner
from mmseg.apis import init_model

from mmdg.apis.demo import demo_config
from mmdg.convert.vit import build_timm_vit


@pytest.mark.tool
def test_adapter_only_checkpoint_roundtrip(tmp_path, demo_data):
    pre = build_timm_vit('vit_small_patch14_dinov2', img_size=(128, 256), patch_size=16, embed_dim=192, depth=6,
                         num_heads=3, init_values=1e-5)
    torch.save(pre.state_dict(), tmp_path / 'pretrained.pth')
    cfg = demo_config('sora', data_root=demo_data, work_dir=str(tmp_path / 'work'), max_iters=3,
                      pretrained=str(tmp_path / 'pretrained.pth'), num_workers=0)
    cfg.train_dataloader.batch_size = 2
    cfg.custom_hooks = cfg.custom_hooks + [dict(type='AdapterCheckpointHook')]
    runner = Runner.from_cfg(cfg)
    runner.train()
    ckpt_path = tmp_path / 'work' / 'iter_3.pth'
    ckpt = torch.load(ckpt_path, weights_only=False)
    keys = ckpt['state_dict'].keys()
    assert ckpt['meta']['mmdg_adapter_only']
    assert 'backbone.vit.blocks.2.attn.qkv.lora_A' in keys and 'backbone.vit.blocks.2.attn.qkv.base.bias' in keys
    assert 'backbone.vit.blocks.2.attn.qkv.base.weight' not in keys and 'backbone.vit.pos_embed' not in keys
    assert any(k.startswith('decode_head.') for k in keys)
    n_saved = sum(v.numel() for v in ckpt['state_dict'].values())
    n_model = sum(v.numel() for v in runner.model.state_dict().values())
    assert n_saved < 0.5 * n_model

    rebuilt = init_model(cfg, str(ckpt_path), device='cpu')  # fresh pre-trained backbone + SVD + adapters
    trained = runner.model.eval()
    x = torch.randn(1, 3, 128, 256)
    with torch.no_grad():
        torch.testing.assert_close(rebuilt.backbone(x), trained.backbone(x), rtol=0, atol=0)
        torch.testing.assert_close(rebuilt._forward(x), trained._forward(x), rtol=0, atol=0)
