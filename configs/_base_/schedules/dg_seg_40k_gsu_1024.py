# The SoRA schedule of GTA5 + SYNTHIA + UrbanSyn at 1024: as dg_seg_40k.py with EMA from iteration 16k.
_base_ = ['./dg_seg_40k.py']
custom_hooks = [
    dict(type='AdapterAuxLossHook'),
    dict(type='WeightDecayLoggerHook'),
    dict(type='NonFiniteLossHook'),
    dict(type='RNGStateCheckpointHook'),
    dict(type='EMAHook', ema_type='ExponentialMovingAverage', momentum=2e-4, update_buffers=False,
         begin_iter=16000, priority=49),
]
