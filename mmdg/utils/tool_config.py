"""The config loading shared by the command-line tools (it imports no mmdg registry: the config's
``default_scope`` / ``custom_imports`` register mmdg, as they would from any other entry point)."""
import os.path as osp

from mmengine.config import Config


def load_tool_config(config: str, cfg_options=None, launcher: str = 'none', work_dir=None) -> Config:
    """``config`` with ``--cfg-options`` merged, ``launcher`` set and ``work_dir`` resolved
    (argument, then the config's, then ``work_dirs/<config name>``)."""
    if not osp.isfile(config):
        raise SystemExit(f'config file {config} does not exist')
    cfg = Config.fromfile(config)
    cfg.launcher = launcher
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    cfg.work_dir = work_dir or cfg.get('work_dir') or osp.join('work_dirs', osp.splitext(osp.basename(config))[0])
    return cfg


AMP_DTYPES = {'fp16': 'float16', 'bf16': 'bfloat16'}


def apply_amp(cfg: Config, dtype: str = 'fp16') -> Config:
    """Switch the config's optimizer wrapper to mmengine's ``AmpOptimWrapper`` with ``dtype`` autocast
    (``fp16`` with dynamic loss scaling, or ``bf16``, which needs no scaling but keeps mmengine's
    scaler harmlessly). Clip-grad and paramwise settings are kept."""
    if dtype not in AMP_DTYPES:
        raise SystemExit(f'--amp takes one of {sorted(AMP_DTYPES)}, got {dtype!r}')
    wrapper = cfg.optim_wrapper
    if wrapper.get('type', 'OptimWrapper') not in ('OptimWrapper', 'AmpOptimWrapper'):
        raise SystemExit(f'--amp: the config uses {wrapper.type}; switch it to AmpOptimWrapper by hand')
    wrapper.type = 'AmpOptimWrapper'
    wrapper.dtype = AMP_DTYPES[dtype]
    wrapper.setdefault('loss_scale', 'dynamic')
    return cfg
