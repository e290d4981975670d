# SoRA on DINOv2-L + Mask2Former, batch 4 on 1 GPU, 40k iterations: GTA5 + SYNTHIA + UrbanSyn -> Cityscapes / BDD100K / Mapillary, 512 crops.
_base_ = ['../../_base_/methods/sora.py', '../../_base_/datasets/gta5+synthia+urbansyn_to_cbm_512.py',
          '../../_base_/schedules/dg_seg_40k_no_ema.py']
