# The official frozen-backbone baseline's schedule: constant weight decay, poly lr, no EMA, validation
# every 10k iterations.
_base_ = ['./dg_seg_40k_no_ema.py']
param_scheduler = [dict(type='PolyLR', eta_min=0, power=0.9, begin=0, end=40000, by_epoch=False)]
train_cfg = dict(val_interval=10000)
default_hooks = dict(checkpoint=dict(interval=10000, max_keep_ckpts=4))
