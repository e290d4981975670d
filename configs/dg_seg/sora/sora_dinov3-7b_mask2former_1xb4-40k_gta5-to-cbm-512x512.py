# SoRA on DINOv3-7B + Mask2Former, batch 4 on 1 GPU, 40k iterations: GTA5 -> Cityscapes / BDD100K / Mapillary, 512 crops.
# The DINOv2-L recipe scaled to the 7B's 40 blocks by depth fraction (block (i + 1) / 24 of ViT-L -> the same
# fraction of 40): features of blocks 12 / 19 / 26 / 39 (ViT-L: 7 / 11 / 15 / 23), the first 13 blocks frozen
# and adapters in 13-39 (ViT-L: 8 of 24, a third of the depth, the "domain-generalizable blocks"), r = 16 as in
# the recipe. The weight-decay annealing follows the iteration, not the depth: unchanged. Width 4096: the
# Mask2Former head reads 4 x 4096 channels. mmdg's own setting; not yet trained (and beyond one GPU's memory
# for full fine-tuning; the SoRA adapters are 0.3 % of the weights).
_base_ = ['../../_base_/methods/sora.py', '../../_base_/datasets/gta5_to_cbm_512.py',
           '../../_base_/schedules/dg_seg_40k.py']
model = dict(backbone=dict(arch='dinov3-7b', pos_resample='timm', out_indices=(12, 19, 26, 39), frozen_blocks=13,
                           adapter=dict(blocks=(13, 40)),
                           pretrained='checkpoints/dinov3_vit7b16_pretrain_lvd1689m.pth'),
             decode_head=dict(in_channels=[4096, 4096, 4096, 4096]))
