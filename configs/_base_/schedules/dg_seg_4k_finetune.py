# The data-efficiency fine-tuning schedule: 4k iterations from a GTA5 + SYNTHIA + UrbanSyn checkpoint
# (`load_from`), lr 1e-5 (backbone x0.5), weight decay annealed over the 4k iterations, validation and
# checkpoints every 400 iterations, no EMA.
_base_ = ['./dg_seg_40k_no_ema.py']
optim_wrapper = dict(optimizer=dict(lr=1e-5))
param_scheduler = [
    dict(type='PolyLR', eta_min=0, power=0.9, begin=0, end=4000, by_epoch=False),
    dict(type='AnnealedWeightDecay', eta_min=1e-5, begin=0, end=4000, by_epoch=False, keep_zero=True),
]
train_cfg = dict(max_iters=4000, val_interval=400)
default_hooks = dict(checkpoint=dict(interval=400, max_keep_ckpts=7))
