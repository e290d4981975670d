# Detection demo: Faster R-CNN on the pre-trained tiny ViT of the segmentation demo (6 blocks, width 192,
# patch 16; tools/pretrain_demo_backbone.py), fully trained here (tools/demo_det.py --method takes a method's
# backbone switches and backbone lr from configs/demo/<method>.py; its default is SoRA),
# trained on the synthetic source style of the procedural DWD-style data.
_base_ = [
    '../_base_/models/faster-rcnn_vit-l_det.py', '../_base_/datasets/dwd_demo_synthetic.py',
    '../_base_/default_runtime_det.py', '../_base_/schedules/demo_det_cpu.py',
]
model = dict(
    backbone=dict(
        arch='vit_small_patch14_dinov2',
        img_size=(128, 256),
        out_indices=(1, 3, 4, 5),
        pretrained='{{ fileDirname }}/../../assets/demo_vit_tiny_pretrained.safetensors',
        frozen_blocks=0,
        model_kwargs=dict(embed_dim=192, depth=6, num_heads=3, init_values=1e-5)),
    neck=dict(in_channels=[192, 192, 192, 192], out_channels=64),
    # objects of 5-70 pixels: anchors of 16-256 pixels (scale 4 on strides 4-64)
    rpn_head=dict(in_channels=64, feat_channels=64, anchor_generator=dict(scales=[4])),
    roi_head=dict(bbox_roi_extractor=dict(out_channels=64), bbox_head=dict(in_channels=64, fc_out_channels=256)),
    train_cfg=dict(rpn_proposal=dict(nms_pre=1000, max_per_img=300), rcnn=dict(sampler=dict(num=128))),
    test_cfg=dict(rpn=dict(nms_pre=500, max_per_img=300)))
