# The SoRA segmentation recipe's model: a ViT-L (DINOv2-L by default) with patch 16
# (kernel resampled from 14), features of blocks 7/11/15/23 resized to strides 4/8/16/32, and a
# Mask2Former head (100 queries) from mmseg (its pixel decoder and losses come from mmdet).
# `pretrained`: the official checkpoint, converted once with tools/convert/vit.py (see docs/model_zoo.md).
num_classes = 19
data_preprocessor = dict(
    type='SegDataPreProcessor',
    mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375],
    bgr_to_rgb=True, pad_val=0, seg_pad_val=255, size=(512, 512))
model = dict(
    type='SlideSafeEncoderDecoder',  # mmseg's EncoderDecoder; fixes Mask2Former's slide test
    data_preprocessor=data_preprocessor,
    backbone=dict(
        type='TimmViT',
        arch='dinov2-l',
        img_size=512,
        patch_size=16,
        # the official conversion's plain bicubic kernel / position resampling, which the released
        # models and their frozen blocks were trained with ('pinv': timm's norm-preserving resampling)
        patch_resample='bicubic',
        # inputs of another size (whole-image tests, TTA) resample the grid by DINOv2's own rule, as the
        # official backbone does ('timm': timm's antialiased resampling by size)
        pos_resample='dinov2',
        out_indices=(7, 11, 15, 23),
        out_strides=(4, 8, 16, 32),
        pretrained='checkpoints/dinov2_vitl14_pretrain.pth',
        frozen_blocks=8,  # blocks 0-7 stay frozen for every method ("domain-generalizable blocks")
        grad_checkpointing=False,
    ),
    decode_head=dict(
        type='Mask2FormerHead',
        in_channels=[1024, 1024, 1024, 1024],
        strides=[4, 8, 16, 32],
        feat_channels=256,
        out_channels=256,
        num_classes=num_classes,
        num_queries=100,
        num_transformer_feat_level=3,
        align_corners=False,
        pixel_decoder=dict(
            type='mmdet.MSDeformAttnPixelDecoder',
            num_outs=3,
            norm_cfg=dict(type='GN', num_groups=32),
            act_cfg=dict(type='ReLU'),
            encoder=dict(
                num_layers=6,
                layer_cfg=dict(
                    self_attn_cfg=dict(embed_dims=256, num_heads=8, num_levels=3, num_points=4, im2col_step=64,
                                       dropout=0.0, batch_first=True, norm_cfg=None, init_cfg=None),
                    ffn_cfg=dict(embed_dims=256, feedforward_channels=1024, num_fcs=2, ffn_drop=0.0,
                                 act_cfg=dict(type='ReLU', inplace=True))),
                init_cfg=None),
            positional_encoding=dict(num_feats=128, normalize=True),
            init_cfg=None),
        enforce_decoder_input_project=False,
        positional_encoding=dict(num_feats=128, normalize=True),
        transformer_decoder=dict(
            return_intermediate=True,
            num_layers=9,
            layer_cfg=dict(
                self_attn_cfg=dict(embed_dims=256, num_heads=8, attn_drop=0.0, proj_drop=0.0, dropout_layer=None,
                                   batch_first=True),
                cross_attn_cfg=dict(embed_dims=256, num_heads=8, attn_drop=0.0, proj_drop=0.0, dropout_layer=None,
                                    batch_first=True),
                ffn_cfg=dict(embed_dims=256, feedforward_channels=2048, num_fcs=2, act_cfg=dict(type='ReLU', inplace=True),
                             ffn_drop=0.0, dropout_layer=None, add_identity=True)),
            init_cfg=None),
        loss_cls=dict(type='mmdet.CrossEntropyLoss', use_sigmoid=False, loss_weight=2.0, reduction='mean',
                      class_weight=[1.0] * num_classes + [0.1]),
        loss_mask=dict(type='mmdet.CrossEntropyLoss', use_sigmoid=True, reduction='mean', loss_weight=5.0),
        loss_dice=dict(type='mmdet.DiceLoss', use_sigmoid=True, activate=True, reduction='mean', naive_dice=True,
                       eps=1.0, loss_weight=5.0),
        train_cfg=dict(
            num_points=12544,
            oversample_ratio=3.0,
            importance_sample_ratio=0.75,
            assigner=dict(
                type='mmdet.HungarianAssigner',
                match_costs=[
                    dict(type='mmdet.ClassificationCost', weight=2.0),
                    dict(type='mmdet.CrossEntropyLossCost', weight=5.0, use_sigmoid=True),
                    dict(type='mmdet.DiceCost', weight=5.0, pred_act=True, eps=1.0),
                ]),
            sampler=dict(type='mmdet.MaskPseudoSampler'))),
    train_cfg=dict(),
    # Sliding-window test, 512 windows with stride 341.
    test_cfg=dict(mode='slide', crop_size=(512, 512), stride=(341, 341)))
