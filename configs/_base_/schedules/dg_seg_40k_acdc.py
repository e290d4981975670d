# The SoRA schedule of Cityscapes -> ACDC: as dg_seg_40k_cityscapes.py with a 10k-iteration warm-up from
# 1e-6 x lr.
_base_ = ['./dg_seg_40k_cityscapes.py']
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-6, by_epoch=False, begin=0, end=10000),
    dict(type='PolyLR', eta_min=0, power=0.9, begin=10000, end=40000, by_epoch=False),
    dict(type='AnnealedWeightDecay', eta_min=1e-5, begin=0, end=40000, by_epoch=False, keep_zero=True),
]
default_hooks = dict(checkpoint=dict(max_keep_ckpts=8))  # the official ACDC recipes keep 8
