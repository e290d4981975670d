# The SoRA segmentation schedule (GTA5 -> C/B/M, GTA5 + SYNTHIA): AdamW lr 1e-4, backbone lr x0.5,
# weight decay 0.05 annealed per iteration (cosine) to 1e-5, 0 for norms / embeddings / tokens / queries
# (kept at 0: `keep_zero=False` reproduces the official scheduler, which lifts them towards 1e-5), poly lr
# from iteration 0, 40k iterations, validation every 4k, EMA of the weights from iteration 12k (used for
# validation and saved in the checkpoints). docs/parity.md compares every value with the official one.
_base_ = ['../default_runtime.py']
optim_wrapper = dict(
    type='OptimWrapper',
    constructor='DGOptimWrapperConstructor',  # frozen parameters stay out; shared adapter parameters once
    optimizer=dict(type='AdamW', lr=1e-4, betas=(0.9, 0.999), weight_decay=0.05, eps=1e-8),
    paramwise_cfg=dict(
        custom_keys=dict(backbone=dict(lr_mult=0.5)),
        zero_decay_keys=('norm', 'pos_embed', 'cls_token', 'reg_token', 'mask_token', 'query_embed',
                         'query_feat', 'level_embed', 'gamma', 'ls1', 'ls2')),
)
max_iters = 40000
param_scheduler = [
    dict(type='PolyLR', eta_min=0, power=0.9, begin=0, end=max_iters, by_epoch=False),
    dict(type='AnnealedWeightDecay', eta_min=1e-5, begin=0, end=max_iters, by_epoch=False, keep_zero=True),
]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters, val_interval=4000)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=50, log_metric_by_epoch=False),
    param_scheduler=dict(type='ParamSchedulerHook'),
    # Every 4k iterations, the last 6 kept, as the official recipe; the result is the final iteration's. No
    # `save_best`: the validation domains are the unseen targets, and choosing a checkpoint by its score
    # there is choosing on the test set (docs/model_zoo.md, "Which checkpoint is the result").
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=4000, max_keep_ckpts=6),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    visualization=dict(type='SegVisualizationHook'),
)
# EMA over the model's parameters (update_buffers=False, mmengine's default and the official setting):
# each parameter once, also those several adapters share.
custom_hooks = [
    dict(type='AdapterAuxLossHook'),  # CLoRA's SADE loss; a no-op for the other methods
    dict(type='WeightDecayLoggerHook'),
    dict(type='NonFiniteLossHook'),  # stop at the first NaN/inf loss, before a bad checkpoint is written
    dict(type='RNGStateCheckpointHook'),  # --resume continues the exact run (dropout, point sampling)
    dict(type='EMAHook', ema_type='ExponentialMovingAverage', momentum=2e-4, update_buffers=False,
         begin_iter=12000, priority=49),
]
randomness = dict(seed=42)
