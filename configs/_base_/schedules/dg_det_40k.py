# The published SoRA detection schedule (Diverse Weather, batch 2 x 4 GPUs), value by value: AdamW lr 2e-4,
# weight decay 0.05 (head), backbone lr x0.5 and decay x0.2 (= 0.01), no decay for norm layers and names
# containing norm / query_embed / level_embed, grad clip 35, 40k iterations; lr: linear warm-up from
# 0.01 x over 1.5k iterations, then x0.1 at 1.5k + 24k = 25.5k and 1.5k + 32k = 33.5k (the milestones count
# from the scheduler's begin); weight decay annealed per iteration (cosine) to 1e-5 over the run.
_base_ = ['../default_runtime_det.py']
optim_wrapper = dict(
    type='OptimWrapper',
    constructor='DGOptimWrapperConstructor',  # frozen parameters stay out; shared adapter parameters once
    optimizer=dict(type='AdamW', lr=2e-4, betas=(0.9, 0.999), weight_decay=0.05, eps=1e-8),
    clip_grad=dict(max_norm=35, norm_type=2),
    paramwise_cfg=dict(
        custom_keys=dict(backbone=dict(lr_mult=0.5, decay_mult=0.2)),  # backbone decay 0.2 x 0.05 = 0.01
        zero_decay_keys=('norm', 'query_embed', 'level_embed')),
)
max_iters = 40000
warmup_iters = 1500
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-2, begin=0, end=warmup_iters, by_epoch=False),
    dict(type='MultiStepLR', milestones=[24000, 32000], gamma=0.1, begin=warmup_iters, end=max_iters,
         by_epoch=False),
    dict(type='AnnealedWeightDecay', eta_min=1e-5, begin=0, end=max_iters, by_epoch=False),
]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters, val_interval=4000)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=50, log_metric_by_epoch=False),
    param_scheduler=dict(type='ParamSchedulerHook'),
    # Every 4k iterations, the last 8 kept, as the official recipe; the result is the final iteration's. No
    # `save_best`: choosing a checkpoint by its score on the unseen target domains is choosing on the test set.
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=4000, max_keep_ckpts=8),
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
# The published runs: 2 images per GPU on 4 GPUs. lr is not rescaled for other GPU counts (enable=False);
# `--auto-scale-lr` rescales it to the batch actually used.
auto_scale_lr = dict(enable=False, base_batch_size=8)
