# Rein on DINOv2-L + Mask2Former, batch 2 on each of 4 GPUs, 40k iterations: Cityscapes -> ACDC (fog, night, rain,
# snow), 1024 crops; the official w1oves/Rein configs/dinov2_citys2acdc/rein_dinov2_mask2former_1024x1024_bs4x2.py
# (configs/dinov2/rein_dinov2_mask2former_1024x1024_bs4x2.py is the same file, git blob 31f7a4a: it also trains
# on Cityscapes and validates on ACDC; the official repository has no GTA5 1024 config).
# Model as the GTA5 512 Rein config at input 1024 (the official dinov2_converted_1024x1024.pth: positions
# resampled 37x37 -> 64x64 and the kernel 14 -> 16, both bicubic = mmdg's patch_resample='bicubic'), slide
# test 1024 / stride 683. AdamW lr 6e-5 (not 1e-4), decay 0.05 with the same zero-decay keys; lr from 1e-6 x
# lr linearly to lr over 10k iterations, then poly 0.9 to 0 over 10k-40k; validation every 10k; checkpoints
# every 4k (last 3 kept, rein_40k.py); no EMA; seed 42.
_base_ = ['../../_base_/methods/rein.py', '../../_base_/datasets/cityscapes_to_acdc_1024_rein.py',
          '../../_base_/schedules/rein_40k.py']
model = dict(data_preprocessor=dict(size=(1024, 1024)), backbone=dict(img_size=1024),
             test_cfg=dict(crop_size=(1024, 1024), stride=(683, 683)))
optim_wrapper = dict(optimizer=dict(lr=6e-5))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-6, by_epoch=False, begin=0, end=10000),
    dict(type='PolyLR', eta_min=0.0, power=0.9, begin=10000, end=40000, by_epoch=False),
]
# As the official config. It changes no gradient: every trainable mmdg parameter gets one in each step
# (tests/test_distributed.py), so DDP only pays the extra search for unused ones.
find_unused_parameters = True
