# dg_seg_40k.py without EMA (the official GTA5 + SYNTHIA recipe trains without it).
_base_ = ['./dg_seg_40k.py']
custom_hooks = [
    dict(type='AdapterAuxLossHook'),
    dict(type='WeightDecayLoggerHook'),
    dict(type='NonFiniteLossHook'),
    dict(type='RNGStateCheckpointHook'),
]
