# A few minutes on 2 CPU cores: the demo's schedule, shaped like the SoRA recipe's (backbone lr x0.5, no
# decay for norms / embeddings / tokens, weight decay annealed per iteration).
optim_wrapper = dict(
    type='OptimWrapper',
    constructor='DGOptimWrapperConstructor',  # frozen parameters stay out; shared adapter parameters once
    optimizer=dict(type='AdamW', lr=1e-3, betas=(0.9, 0.999), weight_decay=0.01),
    paramwise_cfg=dict(custom_keys=dict(backbone=dict(lr_mult=0.5)),
                       zero_decay_keys=('pos_embed', 'cls_token', 'norm')),
)
max_iters = 500
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=40),
    dict(type='PolyLR', eta_min=1e-5, power=1.0, by_epoch=False, begin=40, end=max_iters),
    dict(type='AnnealedWeightDecay', eta_min=1e-5, by_epoch=False, begin=0, end=max_iters),
]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters, val_interval=max_iters)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=25, log_metric_by_epoch=False),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=max_iters, max_keep_ckpts=1),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    visualization=dict(type='SegVisualizationHook'),
)
randomness = dict(seed=0)
