# DINO (mmdet core, 4 scales, 900 queries) on a ViT-L (DINOv2-L by default) with patch 16 (kernel resampled
# from 14). Simple feature pyramid: the outputs of blocks 11 / 15 / 23 resized to strides 8 / 16 / 32 (as
# the segmentation recipe does for 4 / 8 / 16 / 32), mapped to 256 channels with a stride-64 level added by
# mmdet's ChannelMapper, the neck of DINO-4scale.
# `pretrained`: the official checkpoint (converted on the fly, or once with tools/convert/vit.py).
num_classes = 7
model = dict(
    _scope_='mmdet',  # mmdet builds the detector's parts through the current scope: switch it to mmdet
    type='DINO',
    num_queries=900,
    with_box_refine=True,
    as_two_stage=True,
    data_preprocessor=dict(
        type='DetDataPreprocessor',
        mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375],
        bgr_to_rgb=True, pad_size_divisor=32),
    backbone=dict(
        _scope_='mmdg',  # and back to mmdg for the backbone (mmdg types cannot be named from mmdet's scope)
        type='TimmViT',
        arch='dinov2-l',
        img_size=1024,
        patch_size=16,
        patch_resample='bicubic',  # the official conversion of the 14x14 kernel and the position grid
        pos_resample='dinov2',  # other input sizes: DINOv2's own grid resampling, as the official backbone
        out_indices=(11, 15, 23),
        out_strides=(8, 16, 32),
        pretrained='checkpoints/dinov2_vitl14_pretrain.pth',
        frozen_blocks=8,  # blocks 0-7 stay frozen for every method (the adapters start at block 8)
        grad_checkpointing=False,
    ),
    neck=dict(
        type='ChannelMapper',
        in_channels=[1024, 1024, 1024],
        kernel_size=1,
        out_channels=256,
        act_cfg=None,
        norm_cfg=dict(type='GN', num_groups=32),
        num_outs=4),
    encoder=dict(
        num_layers=6,
        layer_cfg=dict(
            self_attn_cfg=dict(embed_dims=256, num_levels=4, dropout=0.0),
            ffn_cfg=dict(embed_dims=256, feedforward_channels=2048, ffn_drop=0.0))),
    decoder=dict(
        num_layers=6,
        return_intermediate=True,
        layer_cfg=dict(
            self_attn_cfg=dict(embed_dims=256, num_heads=8, dropout=0.0),
            cross_attn_cfg=dict(embed_dims=256, num_levels=4, dropout=0.0),
            ffn_cfg=dict(embed_dims=256, feedforward_channels=2048, ffn_drop=0.0)),
        post_norm_cfg=None),
    positional_encoding=dict(num_feats=128, normalize=True, offset=0.0, temperature=20),
    bbox_head=dict(
        type='DINOHead',
        num_classes=num_classes,
        sync_cls_avg_factor=True,
        loss_cls=dict(type='FocalLoss', use_sigmoid=True, gamma=2.0, alpha=0.25, loss_weight=1.0),
        loss_bbox=dict(type='L1Loss', loss_weight=5.0),
        loss_iou=dict(type='GIoULoss', loss_weight=2.0)),
    dn_cfg=dict(
        label_noise_scale=0.5,
        box_noise_scale=1.0,
        group_cfg=dict(dynamic=True, num_groups=None, num_dn_queries=100)),
    train_cfg=dict(
        assigner=dict(
            type='HungarianAssigner',
            match_costs=[
                dict(type='FocalLossCost', weight=2.0),
                dict(type='BBoxL1Cost', weight=5.0, box_format='xywh'),
                dict(type='IoUCost', iou_mode='giou', weight=2.0),
            ])),
    test_cfg=dict(max_per_img=300))
