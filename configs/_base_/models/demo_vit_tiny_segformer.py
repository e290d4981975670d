# A small DINOv2-architecture ViT (6 blocks, width 192, patch 16) with a light all-MLP head: CPU-sized.
# Its weights: the demo backbone pre-trained by tools/pretrain_demo_backbone.py (committed under assets/;
# pretrained=None trains from scratch). Like the SoRA recipe, the first third of the blocks (2 of 6) stays frozen.
norm_cfg = dict(type='BN', requires_grad=True)
data_preprocessor = dict(
    type='SegDataPreProcessor',
    mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375],
    bgr_to_rgb=True, pad_val=0, seg_pad_val=255, size_divisor=32)
model = dict(
    type='EncoderDecoder',
    data_preprocessor=data_preprocessor,
    backbone=dict(
        type='TimmViT',
        arch='vit_small_patch14_dinov2',
        img_size=(128, 256),
        patch_size=16,
        out_indices=(1, 3, 4, 5),
        out_strides=(4, 8, 16, 32),
        pretrained='{{ fileDirname }}/../../../assets/demo_vit_tiny_pretrained.safetensors',
        frozen_blocks=2,
        model_kwargs=dict(embed_dim=192, depth=6, num_heads=3, init_values=1e-5),
    ),
    decode_head=dict(
        type='SegformerHead',
        in_channels=[192, 192, 192, 192],
        in_index=[0, 1, 2, 3],
        channels=64,
        dropout_ratio=0.1,
        num_classes=19,
        norm_cfg=norm_cfg,
        align_corners=False,
        loss_decode=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0)),
    train_cfg=dict(),
    test_cfg=dict(mode='whole'))
