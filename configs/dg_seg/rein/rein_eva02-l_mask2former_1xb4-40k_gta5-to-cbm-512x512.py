# Rein on EVA02-L + Mask2Former, batch 4 on 1 GPU, 40k iterations: GTA5 -> Cityscapes / BDD100K / Mapillary, 512 crops.
# (The official EVA02-L model sets drop_path_rate=0.2, but its frozen backbone runs in eval mode, where
# drop path does nothing; mmdg's 0 computes the same.)
_base_ = ['../../_base_/methods/rein.py', '../../_base_/datasets/gta5_to_cbm_512_rein.py',
          '../../_base_/schedules/rein_40k.py']
model = dict(backbone=dict(arch='eva02-l', pos_resample='timm', pretrained='checkpoints/eva02_L_pt_m38m_p14.pt'))
