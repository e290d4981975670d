# Rein on DINOv2-L + Mask2Former, batch 4 on 1 GPU, 40k iterations: GTA5 -> Cityscapes / BDD100K / Mapillary, 512 crops.
_base_ = ['../../_base_/methods/rein.py', '../../_base_/datasets/gta5_to_cbm_512_rein.py',
          '../../_base_/schedules/rein_40k.py']
