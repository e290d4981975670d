# frozen backbone on DINOv3-L + Mask2Former, batch 4 on 1 GPU, 40k iterations: GTA5 -> Cityscapes / BDD100K / Mapillary, 512 crops.
# DINOv3-L has DINOv2-L's depth (24 blocks) and width (1024), so the DINOv2-L recipe carries over unchanged:
# features of blocks 7 / 11 / 15 / 23, blocks 0-7 frozen, adapters in 8-23, the same per-iteration weight-decay
# annealing (it follows the iteration, not the depth). Patch 16 is DINOv3's own (no kernel resampling) and RoPE
# needs no position grid ('timm': nothing to resample). Meta's original file (or timm's layout) under checkpoints/.
# mmdg's own setting: neither the official SoRA/SoMA code nor Rein supports DINOv3; not yet trained.
_base_ = ['../../_base_/methods/frozen.py', '../../_base_/datasets/gta5_to_cbm_512.py',
           '../../_base_/schedules/dg_seg_40k_frozen.py']
model = dict(backbone=dict(arch='dinov3-l', pos_resample='timm', pretrained='checkpoints/dinov3_vitl16_pretrain_lvd1689m.pth'))
