# The official full fine-tuning baseline's schedule: backbone lr x0.01 (a larger one collapses DINOv2),
# constant weight decay 0.05 (no annealing), poly lr, no EMA.
_base_ = ['./dg_seg_40k_no_ema.py']
optim_wrapper = dict(paramwise_cfg=dict(custom_keys=dict(backbone=dict(lr_mult=0.01))))
param_scheduler = [dict(type='PolyLR', eta_min=0, power=0.9, begin=0, end=40000, by_epoch=False)]
