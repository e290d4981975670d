# Shared runtime of every mmdg detection config.
# default_scope 'mmdg' (as for segmentation) resolves mmdg's datasets, metric, hooks, optimizer
# constructor and schedulers; mmdet's pieces are named 'mmdet.X' (pipelines, visualizer) and the detector
# is built with `_scope_='mmdet'` (see the model files): mmdet builds its own parts (heads, losses,
# assigners, the hard-coded samplers) through the current scope, which must then be mmdet's.
default_scope = 'mmdg'
custom_imports = dict(imports=['mmdg.models', 'mmdg.datasets', 'mmdg.engine', 'mmdg.evaluation'],
                      allow_failed_imports=False)
task = 'det'  # read by tools/cross_domain_eval.py and the demo
env_cfg = dict(
    cudnn_benchmark=False,
    mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
    dist_cfg=dict(backend='nccl'),
)
vis_backends = [dict(type='LocalVisBackend')]
visualizer = dict(type='mmdet.DetLocalVisualizer', vis_backends=vis_backends)
log_processor = dict(by_epoch=False)
log_level = 'INFO'
load_from = None
resume = False
# Adds adapters' auxiliary losses (CLoRA's loss_sade) to the detector's loss (a no-op for the other methods);
# stops at the first NaN/inf loss, naming the iteration, before a bad checkpoint is written; keeps torch's
# random state in checkpoints so that --resume continues the exact run; checks before the first iteration
# that the model and the data agree (classes, ignore index, label sizes, no empty domain).
custom_hooks = [dict(type='AdapterAuxLossHook'), dict(type='NonFiniteLossHook'), dict(type='RNGStateCheckpointHook'),
                dict(type='DataModelCheckHook')]
