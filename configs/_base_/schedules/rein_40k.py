# The official Rein schedule: AdamW lr 1e-4 for every trainable parameter (no backbone multiplier),
# weight decay 0.05, constant, 0 for norms, level embeddings and Rein's tokens and scale; poly lr from
# iteration 0, 40k iterations, batch 4 on 1 GPU, validation every 10k, no EMA. docs/parity.md compares
# every value with the official one.
_base_ = ['./dg_seg_40k_no_ema.py']
optim_wrapper = dict(
    paramwise_cfg=dict(
        _delete_=True,
        custom_keys=dict(),
        zero_decay_keys=('norm', 'query_embed', 'level_embed', 'learnable_tokens', 'reins.scale')))
param_scheduler = [dict(type='PolyLR', eta_min=0, power=0.9, begin=0, end=40000, by_epoch=False)]
train_cfg = dict(val_interval=10000)
default_hooks = dict(checkpoint=dict(max_keep_ckpts=3))  # the official Rein recipe keeps 3
