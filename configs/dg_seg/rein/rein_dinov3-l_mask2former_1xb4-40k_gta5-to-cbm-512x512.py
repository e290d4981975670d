# Rein on DINOv3-L + Mask2Former, batch 4 on 1 GPU, 40k iterations: GTA5 -> Cityscapes / BDD100K / Mapillary, 512 crops.
# The Rein recipe (rein_40k.py) on DINOv3-L: all 24 blocks refined, features of blocks 7 / 11 / 15 / 23; RoPE
# needs no position grid. mmdg's own setting (the official Rein code does not support DINOv3); not yet trained.
_base_ = ['../../_base_/methods/rein.py', '../../_base_/datasets/gta5_to_cbm_512_rein.py',
          '../../_base_/schedules/rein_40k.py']
model = dict(backbone=dict(arch='dinov3-l', pos_resample='timm', pretrained='checkpoints/dinov3_vitl16_pretrain_lvd1689m.pth'))
