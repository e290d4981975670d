# Full fine-tuning of DINOv3-7B + Mask2Former, sharded over 4 GPUs at batch 1 each (the recipe's total batch
# of 4), GTA5 -> Cityscapes / BDD100K / Mapillary, 512 crops: the full fine-tuning baseline's schedule (backbone
# lr x0.01, no EMA) and the 7B's feature blocks 12 / 19 / 26 / 39 (the DINOv2-L recipe's depth fractions, as in
# the 7B SoRA config). 6.7B trainable parameters: weights, gradients and AdamW state need ~16 bytes each
# (~100 GiB), beyond one GPU; sharded they are a quarter of that per GPU. mmdg's own setting; not yet trained.
_base_ = ['../../_base_/methods/full.py', '../../_base_/datasets/gta5_to_cbm_512.py',
          '../../_base_/schedules/dg_seg_40k_full.py', '../../_base_/fsdp2.py']
model = dict(backbone=dict(arch='dinov3-7b', pos_resample='timm', out_indices=(12, 19, 26, 39), grad_checkpointing=True,
                           frozen_params=('norm1', 'norm2', 'gamma_1', 'gamma_2', 'patch_embed'),
                           pretrained='checkpoints/dinov3_vit7b16_pretrain_lvd1689m.pth'),
             decode_head=dict(in_channels=[4096, 4096, 4096, 4096]))
train_dataloader = dict(batch_size=1)
