# Shared runtime of every mmdg segmentation config.
# default_scope makes mmengine resolve types in mmdg first (then mmseg, then mmengine) and import
# mmdg.registry on its own; custom_imports registers everything else for any entry point.
default_scope = 'mmdg'
custom_imports = dict(imports=['mmdg.models', 'mmdg.datasets', 'mmdg.engine', 'mmdg.evaluation'],
                      allow_failed_imports=False)
env_cfg = dict(
    cudnn_benchmark=False,
    mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
    dist_cfg=dict(backend='nccl'),
)
vis_backends = [dict(type='LocalVisBackend')]
visualizer = dict(type='SegLocalVisualizer', vis_backends=vis_backends, name='visualizer')
log_processor = dict(by_epoch=False)
log_level = 'INFO'
load_from = None
resume = False
# Adds adapters' auxiliary losses (CLoRA's loss_sade) to the loss (a no-op for the other methods);
# stops at the first NaN/inf loss, naming the iteration, before a bad checkpoint is written; keeps torch's
# random state in checkpoints so that --resume continues the exact run; checks before the first iteration
# that the model and the data agree (classes, ignore index, label sizes, no empty domain).
custom_hooks = [dict(type='AdapterAuxLossHook'), dict(type='NonFiniteLossHook'), dict(type='RNGStateCheckpointHook'),
                dict(type='DataModelCheckHook')]
