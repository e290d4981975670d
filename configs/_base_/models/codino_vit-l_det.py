# Co-DINO (5 scales, 900 queries) on a ViT-L (DINOv2-L by default, patch 16 with the kernel resampled from
# 14), the detector of the published SoRA Diverse Weather numbers, value by value:
# - features: blocks 7 / 11 / 15 / 23 at strides 4 / 8 / 16 / 32, mapped to 256 channels, plus a stride-64
#   level (ChannelMapper, GN); the encoder's output plus one stride-128 level feed the auxiliary heads;
# - DINO part: 6 + 6 layers, 900 queries, denoising (100 queries, dynamic groups), QualityFocal loss;
# - training-only auxiliary heads on the encoder's output: RPN + Faster R-CNN RoI head and ATSS, each
#   loss weighted 12 (= 6 decoder layers x lambda 2), both feeding their positives to the decoder;
# - test: DINO's top 300 followed by soft-NMS (IoU 0.8).
num_classes = 7
num_dec_layer = 6
loss_lambda = 2.0
aux_w = num_dec_layer * loss_lambda
model = dict(
    _scope_='mmdet',  # mmdet builds the detector's parts through the current scope: switch it to mmdet
    type='CoDINO',
    num_queries=900,
    with_box_refine=True,
    as_two_stage=True,
    num_feature_levels=5,
    data_preprocessor=dict(
        type='DetDataPreprocessor',
        mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375],
        bgr_to_rgb=True, pad_size_divisor=32, batch_augments=None),
    backbone=dict(
        _scope_='mmdg',  # and back to mmdg for the backbone (mmdg types cannot be named from mmdet's scope)
        type='TimmViT',
        arch='dinov2-l',
        img_size=1024,
        patch_size=16,
        patch_resample='bicubic',  # the official conversion of the 14x14 kernel and the position grid
        pos_resample='dinov2',  # other input sizes: DINOv2's own grid resampling, as the official backbone
        out_indices=(7, 11, 15, 23),
        out_strides=(4, 8, 16, 32),
        pretrained='checkpoints/dinov2_vitl14_pretrain.pth',
        frozen_blocks=8,  # blocks 0-7 stay frozen for every method (the adapters start at block 8)
        grad_checkpointing=False,
    ),
    neck=dict(
        type='ChannelMapper',
        in_channels=[1024, 1024, 1024, 1024],
        kernel_size=1,
        out_channels=256,
        act_cfg=None,
        norm_cfg=dict(type='GN', num_groups=32),
        num_outs=5),
    encoder=dict(
        num_layers=6,
        layer_cfg=dict(
            self_attn_cfg=dict(embed_dims=256, num_levels=5, dropout=0.0),
            ffn_cfg=dict(embed_dims=256, feedforward_channels=2048, ffn_drop=0.0))),
    decoder=dict(
        num_layers=num_dec_layer,
        return_intermediate=True,
        layer_cfg=dict(
            self_attn_cfg=dict(embed_dims=256, num_heads=8, dropout=0.0),
            cross_attn_cfg=dict(embed_dims=256, num_levels=5, dropout=0.0),
            ffn_cfg=dict(embed_dims=256, feedforward_channels=2048, ffn_drop=0.0)),
        post_norm_cfg=None),
    positional_encoding=dict(num_feats=128, normalize=True, offset=0.0, temperature=20),
    bbox_head=dict(
        type='CoDINOHead',
        num_classes=num_classes,
        sync_cls_avg_factor=False,  # the official head's (mmdet's DETR default; DINO's own configs say True)
        reference_eps=1e-3,  # inverse_sigmoid of the reference points, as the official Co-DINO head
        loss_cls=dict(type='QualityFocalLoss', use_sigmoid=True, beta=2.0, loss_weight=1.0),
        loss_bbox=dict(type='L1Loss', loss_weight=5.0),
        loss_iou=dict(type='GIoULoss', loss_weight=2.0)),
    dn_cfg=dict(
        label_noise_scale=0.5,
        box_noise_scale=1.0,
        group_cfg=dict(dynamic=True, num_groups=None, num_dn_queries=100)),
    rpn_head=dict(
        type='RPNHead',
        in_channels=256,
        feat_channels=256,
        anchor_generator=dict(type='AnchorGenerator', octave_base_scale=4, scales_per_octave=3,
                              ratios=[0.5, 1.0, 2.0], strides=[4, 8, 16, 32, 64, 128]),
        bbox_coder=dict(type='DeltaXYWHBBoxCoder', target_means=[.0, .0, .0, .0], target_stds=[1.0, 1.0, 1.0, 1.0]),
        loss_cls=dict(type='CrossEntropyLoss', use_sigmoid=True, loss_weight=1.0 * aux_w),
        loss_bbox=dict(type='L1Loss', loss_weight=1.0 * aux_w),
        train_cfg=dict(
            assigner=dict(type='MaxIoUAssigner', pos_iou_thr=0.7, neg_iou_thr=0.3, min_pos_iou=0.3,
                          match_low_quality=True, ignore_iof_thr=-1),
            sampler=dict(type='RandomSampler', num=256, pos_fraction=0.5, neg_pos_ub=-1,
                         add_gt_as_proposals=False),
            allowed_border=-1, pos_weight=-1, debug=False,
            rpn_proposal=dict(nms_pre=4000, max_per_img=1000, nms=dict(type='nms', iou_threshold=0.7),
                              min_bbox_size=0)),
        test_cfg=dict(nms_pre=1000, max_per_img=1000, nms=dict(type='nms', iou_threshold=0.7), min_bbox_size=0)),
    roi_head=[dict(
        type='CoStandardRoIHead',
        bbox_roi_extractor=dict(
            type='SingleRoIExtractor',
            roi_layer=dict(type='RoIAlign', output_size=7, sampling_ratio=0),
            out_channels=256,
            featmap_strides=[4, 8, 16, 32, 64],
            finest_scale=56),
        bbox_head=dict(
            type='Shared2FCBBoxHead',
            in_channels=256,
            fc_out_channels=1024,
            roi_feat_size=7,
            num_classes=num_classes,
            bbox_coder=dict(type='DeltaXYWHBBoxCoder', target_means=[0., 0., 0., 0.],
                            target_stds=[0.1, 0.1, 0.2, 0.2]),
            reg_class_agnostic=False,
            reg_decoded_bbox=True,
            loss_cls=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0 * aux_w),
            loss_bbox=dict(type='GIoULoss', loss_weight=10.0 * aux_w)),
        train_cfg=dict(
            assigner=dict(type='MaxIoUAssigner', pos_iou_thr=0.5, neg_iou_thr=0.5, min_pos_iou=0.5,
                          match_low_quality=False, ignore_iof_thr=-1),
            sampler=dict(type='RandomSampler', num=512, pos_fraction=0.25, neg_pos_ub=-1,
                         add_gt_as_proposals=True),
            pos_weight=-1, debug=False),
        test_cfg=dict(score_thr=0.0, nms=dict(type='nms', iou_threshold=0.5), max_per_img=100))],
    aux_bbox_head=[dict(
        type='CoATSSHead',
        num_classes=num_classes,
        in_channels=256,
        stacked_convs=1,
        feat_channels=256,
        anchor_generator=dict(type='AnchorGenerator', ratios=[1.0], octave_base_scale=8, scales_per_octave=1,
                              strides=[4, 8, 16, 32, 64, 128]),
        bbox_coder=dict(type='DeltaXYWHBBoxCoder', target_means=[.0, .0, .0, .0],
                        target_stds=[0.1, 0.1, 0.2, 0.2]),
        loss_cls=dict(type='FocalLoss', use_sigmoid=True, gamma=2.0, alpha=0.25, loss_weight=1.0 * aux_w),
        loss_bbox=dict(type='GIoULoss', loss_weight=2.0 * aux_w),
        loss_centerness=dict(type='CrossEntropyLoss', use_sigmoid=True, loss_weight=1.0 * aux_w),
        train_cfg=dict(assigner=dict(type='ATSSAssigner', topk=9), allowed_border=-1, pos_weight=-1, debug=False),
        test_cfg=dict(nms_pre=1000, min_bbox_size=0, score_thr=0.0, nms=dict(type='nms', iou_threshold=0.6),
                      max_per_img=100))],
    max_pos_coords=300,
    transformer_init='official',  # PyTorch defaults in the transformer, as the official run (docs/parity.md)
    train_cfg=dict(
        assigner=dict(
            type='HungarianAssigner',
            match_costs=[
                dict(type='FocalLossCost', weight=2.0),
                dict(type='BBoxL1Cost', weight=5.0, box_format='xywh'),
                dict(type='IoUCost', iou_mode='giou', weight=2.0),
            ])),
    test_cfg=dict(max_per_img=300, nms=dict(type='soft_nms', iou_threshold=0.8)))
