"""The config loading shared by the command-line tools (it imports no mmdg registry: the config's
``default_scope`` / ``custom_imports`` register mmdg, as they would from any other entry point)."""
import contextlib
import os
import os.path as osp
import sys

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
    return setup_cpu_distributed(cfg)


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


def check_total_batch(cfg: Config, auto_scale: bool = False) -> Config:
    """Compare this run's total batch (processes x ``train_dataloader.batch_size``) with the recipe's
    (``auto_scale_lr.base_batch_size``): warn when they differ, or with ``auto_scale`` let mmengine scale
    the lr linearly. A different total batch at the same lr is a different recipe."""
    recipe = cfg.get('auto_scale_lr', {}).get('base_batch_size')
    if auto_scale:
        if not recipe:
            raise SystemExit('--auto-scale-lr: the config has no auto_scale_lr.base_batch_size to scale to')
        cfg.auto_scale_lr.enable = True
        return cfg
    world = int(os.environ.get('WORLD_SIZE', 1))
    batch = cfg.get('train_dataloader', {}).get('batch_size')
    if recipe and batch and world * batch != recipe:
        sys.stderr.write(f'warning: this run trains with {world} process(es) x batch {batch} = {world * batch} '
                         f'images per step, the recipe with {recipe}; the lr is not scaled (pass '
                         '--auto-scale-lr to scale it linearly) and results may differ from the recipe\'s\n')
    return cfg


#: Errors that mean bad input (a typo in a config, a missing file, a label value out of range, a NaN
#: loss) rather than a bug: the tools print their message in one line instead of a traceback.
INPUT_ERRORS = (KeyError, ValueError, OSError, FloatingPointError, TypeError)


@contextlib.contextmanager
def input_errors_as_messages():
    """Turn :data:`INPUT_ERRORS` and mmdg's own errors into ``error: <message>`` and exit status 1.
    ``MMDG_DEBUG=1`` keeps the traceback."""
    try:
        yield
    except Exception as exc:  # noqa: BLE001 - re-raised unless it is an input error
        if os.environ.get('MMDG_DEBUG') or not (isinstance(exc, INPUT_ERRORS) or
                                                 type(exc).__module__.startswith('mmdg.')):
            raise
        msg = exc.args[0] if isinstance(exc, KeyError) and exc.args else str(exc)
        if 'Original Traceback' in msg:  # raised in a DataLoader worker: its last line is the error itself
            msg = msg.strip().splitlines()[-1].split(': ', 1)[-1]
        sys.stderr.write(f'error: {type(exc).__name__}: {msg}\n(MMDG_DEBUG=1 shows the traceback)\n')
        raise SystemExit(1) from None


def setup_cpu_distributed(cfg: Config) -> Config:
    """Make a ``--launcher pytorch`` run work without GPUs. mmengine's launcher calls
    ``torch.cuda.set_device`` and DDP gets ``device_ids=[LOCAL_RANK]``, both of which fail on CPU, so the
    gloo process group is started here (mmengine then skips its own start) and DDP is wrapped without
    device ids."""
    import torch
    import torch.distributed as dist
    if cfg.get('launcher', 'none') != 'pytorch' or torch.cuda.is_available():
        return cfg
    cfg.setdefault('env_cfg', {}).setdefault('dist_cfg', {})['backend'] = 'gloo'
    if cfg.get('model_wrapper_cfg') is None:
        cfg.model_wrapper_cfg = dict(type='MMDistributedDataParallel', device_ids=None, broadcast_buffers=False,
                                     find_unused_parameters=cfg.get('find_unused_parameters', False))
    if not dist.is_initialized():
        dist.init_process_group('gloo')  # env:// set by torchrun (RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT)
    return cfg
