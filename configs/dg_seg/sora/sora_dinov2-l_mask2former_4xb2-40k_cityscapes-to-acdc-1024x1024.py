# SoRA on DINOv2-L + Mask2Former, batch 2 on each of 4 GPUs, 40k iterations: Cityscapes -> ACDC (fog, night, rain, snow), 1024 crops.
_base_ = ['../../_base_/methods/sora.py', '../../_base_/datasets/cityscapes_to_acdc_1024.py',
           '../../_base_/schedules/dg_seg_40k_acdc.py']
model = dict(data_preprocessor=dict(size=(1024, 1024)), backbone=dict(img_size=1024),
             test_cfg=dict(crop_size=(1024, 1024), stride=(683, 683)))
