# CLoRA on EVA02-L + Mask2Former, batch 4 on 1 GPU, 40k iterations: GTA5 -> Cityscapes / BDD100K / Mapillary, 512 crops.
_base_ = ['../../_base_/methods/clora.py', '../../_base_/datasets/gta5_to_cbm_512.py',
           '../../_base_/schedules/dg_seg_40k.py']
model = dict(backbone=dict(arch='eva02-l', pos_resample='timm', pretrained='checkpoints/eva02_L_pt_m38m_p14.pt'))
