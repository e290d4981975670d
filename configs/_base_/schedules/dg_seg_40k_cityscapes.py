# The SoRA schedule of the Cityscapes-source protocols (-> BDD100K / Mapillary, -> ACDC): as dg_seg_40k.py
# with a 1.5k-iteration linear warm-up from 0.01 x lr before the poly decay, and EMA from 20k.
_base_ = ['./dg_seg_40k.py']
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-2, by_epoch=False, begin=0, end=1500),
    dict(type='PolyLR', eta_min=0, power=0.9, begin=1500, end=40000, by_epoch=False),
    dict(type='AnnealedWeightDecay', eta_min=1e-5, begin=0, end=40000, by_epoch=False, keep_zero=True),
]
custom_hooks = [
    dict(type='AdapterAuxLossHook'),
    dict(type='WeightDecayLoggerHook'),
    dict(type='NonFiniteLossHook'),
    dict(type='RNGStateCheckpointHook'),
    dict(type='EMAHook', ema_type='ExponentialMovingAverage', momentum=2e-4, update_buffers=False,
         begin_iter=20000, priority=49),
]
