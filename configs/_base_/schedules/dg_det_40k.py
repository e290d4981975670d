# The SoRA detection schedule (METHODS.md §6): AdamW lr 2e-4, backbone lr x0.5, backbone weight decay 0.01
# annealed per iteration (cosine) to 1e-5, 0 for norms / embeddings / tokens / queries, grad clip 35,
# 40k iterations. Not fixed by METHODS.md, taken from mmdet's DINO: the head's weight decay 1e-4 (annealed
# too), lr x0.1 at 90% of the run, 2 images per GPU.
_base_ = ['../default_runtime_det.py']
optim_wrapper = dict(
    type='OptimWrapper',
    constructor='DGOptimWrapperConstructor',  # frozen parameters stay out; shared adapter parameters once
    optimizer=dict(type='AdamW', lr=2e-4, betas=(0.9, 0.999), weight_decay=1e-4, eps=1e-8),
    clip_grad=dict(max_norm=35, norm_type=2),
    paramwise_cfg=dict(
        custom_keys=dict(backbone=dict(lr_mult=0.5, decay_mult=100.0)),  # backbone decay 100 x 1e-4 = 0.01
        zero_decay_keys=('norm', 'pos_embed', 'cls_token', 'reg_token', 'mask_token', 'query_embed',
                         'label_embedding', 'level_embed', 'gamma', 'ls1', 'ls2')),
)
max_iters = 40000
param_scheduler = [
    dict(type='MultiStepLR', milestones=[36000], gamma=0.1, begin=0, end=max_iters, by_epoch=False),
    dict(type='AnnealedWeightDecay', eta_min=1e-5, begin=0, end=max_iters, by_epoch=False),
]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters, val_interval=4000)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=50, log_metric_by_epoch=False),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=4000, max_keep_ckpts=3,
                    save_best='mean/mAP', rule='greater'),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    visualization=dict(type='mmdet.DetVisualizationHook'),
)
custom_hooks = [
    dict(type='AdapterAuxLossHook'),  # CLoRA's SADE loss; a no-op for the other methods
    dict(type='WeightDecayLoggerHook'),
    dict(type='NonFiniteLossHook'),  # stop at the first NaN/inf loss, before a bad checkpoint is written
    dict(type='RNGStateCheckpointHook'),  # --resume continues the exact run (dropout, point sampling)
]
randomness = dict(seed=0)
