# SoRA on DINOv2-L + Mask2Former, batch 2 on each of 4 GPUs, 40k iterations: Cityscapes -> ACDC (fog, night, rain, snow), 512 crops.
_base_ = ['../../_base_/methods/sora.py', '../../_base_/datasets/cityscapes_to_acdc_512.py',
           '../../_base_/schedules/dg_seg_40k_acdc.py']
