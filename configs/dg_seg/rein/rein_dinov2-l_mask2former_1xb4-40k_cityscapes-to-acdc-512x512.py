# Rein on DINOv2-L + Mask2Former, batch 4 on 1 GPU, 40k iterations: Cityscapes -> ACDC (fog, night, rain, snow),
# 512 crops; the official w1oves/Rein configs/dinov2_citys2acdc/rein_dinov2_mask2former_512x512_bs1x4.py.
# Model, optimizer (AdamW lr 1e-4, decay 0.05, 0 for norms / query_embed / level_embed / learnable_tokens /
# reins.scale), poly lr from iteration 0, validation every 10k, checkpoints every 4k (last 3 kept), no EMA,
# seed 42: as the GTA5 512 Rein config (rein_40k.py).
_base_ = ['../../_base_/methods/rein.py', '../../_base_/datasets/cityscapes_to_acdc_512_rein.py',
          '../../_base_/schedules/rein_40k.py']
