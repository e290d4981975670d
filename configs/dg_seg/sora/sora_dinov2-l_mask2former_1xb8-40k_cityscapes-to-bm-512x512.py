# SoRA on DINOv2-L + Mask2Former, batch 8 on 1 GPU, 40k iterations: Cityscapes -> BDD100K / Mapillary, 512 crops.
_base_ = ['../../_base_/methods/sora.py', '../../_base_/datasets/cityscapes_to_bm_512.py',
           '../../_base_/schedules/dg_seg_40k_cityscapes.py']
