"""The config loading shared by the command-line tools (it imports no mmdg registry: the config's
``default_scope`` / ``custom_imports`` register mmdg, as they would from any other entry point)."""
import contextlib
import os
import os.path as osp
import sys

from mmengine.config import Config
from mmengine.hooks import Hook


def flatten_config(d, prefix: str = '') -> dict:
    """``{'a.b.0.c': leaf}`` of a nested config (lists of dicts indexed, tuples as lists): how docs/parity.md
    and tests/official/ name each value of a model config."""
    if isinstance(d, dict):
        return {k: v for key, val in d.items()
                for k, v in flatten_config(val, f'{prefix}.{key}' if prefix else str(key)).items()}
    if isinstance(d, (list, tuple)) and any(isinstance(x, dict) for x in d):
        return {k: v for i, val in enumerate(d) for k, v in flatten_config(val, f'{prefix}.{i}').items()}
    return {prefix: list(d) if isinstance(d, tuple) else d}


def positive_int(text: str) -> int:
    """argparse type of a count that must be at least 1 (a batch size of 0 would run on no image at all)."""
    import argparse
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f'{text!r} is not a whole number') from None
    if value < 1:
        raise argparse.ArgumentTypeError(f'must be at least 1, got {value}')
    return value


class ConfigValueError(ValueError):
    """A config value (from the file or ``--cfg-options``) of the wrong type or out of range."""


#: What the running tool is doing, owned by the command-line helpers and kept up to date by the
#: :class:`RunStateHook` that :func:`track_run` adds to a tool's runner (the engine never touches it): the
#: config file, the runner (for the Ctrl-C message) and whether the loop has started. Once it has, only
#: mmdg's own error types (raised with a message naming the file or the config key) are reported in one
#: line: a plain ``TypeError`` from inside a training step is a bug whose traceback must be kept.
RUN_STATE = dict(config=None, runner=None, in_loop=False, mode='train')


class RunStateHook(Hook):
    """Marks :data:`RUN_STATE` as in the loop once the run's start-up checks have passed (it runs after
    ``DataModelCheckHook``, which has the same priority and is registered first)."""

    priority = 'VERY_HIGH'

    def _enter(self, runner, mode: str) -> None:
        RUN_STATE.update(runner=runner, in_loop=True, mode=mode)

    def before_train(self, runner) -> None:
        self._enter(runner, 'train')

    def before_val(self, runner) -> None:
        if not (RUN_STATE['in_loop'] and RUN_STATE['mode'] == 'train'):  # not a validation within training
            self._enter(runner, 'val')

    def before_test(self, runner) -> None:
        self._enter(runner, 'test')


def track_run(runner):
    """Add :class:`RunStateHook` to a tool's runner (``mmdg.utils.console.build_runner`` does)."""
    RUN_STATE.update(runner=runner, in_loop=False)
    runner.register_hook(RunStateHook())
    return runner


def _debug() -> bool:
    return bool(os.environ.get('MMDG_DEBUG'))


def _fail(msg: str) -> SystemExit:
    return SystemExit(f'error: {msg}')


def load_tool_config(config: str, cfg_options=None, launcher: str = 'none', work_dir=None) -> Config:
    """``config`` with ``--cfg-options`` merged, ``launcher`` set and ``work_dir`` resolved
    (argument, then the config's, then ``work_dirs/<config name>``). A config that cannot be read or an
    option of the wrong type stops with one line naming the file or the key; mmdg's start-up check
    (:func:`add_startup_check`) is added to the config's hooks."""
    if not osp.isfile(config):
        raise SystemExit(f'config file {config} does not exist')
    try:
        cfg = Config.fromfile(config)
    except (SyntaxError, NameError, ImportError, OSError, KeyError, TypeError, ValueError, AttributeError) as exc:
        if _debug():
            raise
        raise _fail(f'config {config} cannot be read: {type(exc).__name__}: {exc}') from None
    cfg.launcher = launcher
    if cfg_options:
        try:
            check_option_types(cfg, cfg_options)
            cfg.merge_from_dict(cfg_options)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            if _debug():
                raise
            raise _fail(f'--cfg-options: {exc.args[0] if exc.args else exc}') from None
    try:
        check_config_values(cfg)
    except ConfigValueError as exc:
        if _debug():
            raise
        raise _fail(f'{config}: {exc}') from None
    cfg.work_dir = work_dir or cfg.get('work_dir') or osp.join('work_dirs', osp.splitext(osp.basename(config))[0])
    if launcher == 'none' and unshard(cfg):
        sys.stderr.write(f'note: {osp.basename(config)} shards its model over processes (FSDP2Strategy); in one '
                         'process it runs unsharded (launch tools/dist_train.sh CONFIG NGPUS to shard)\n')
    RUN_STATE.update(config=config, runner=None, in_loop=False)
    add_startup_check(cfg)
    return setup_cpu_distributed(cfg)


def is_sharded_config(cfg: Config) -> bool:
    strategy = cfg.get('strategy')
    return isinstance(strategy, dict) and str(strategy.get('type', '')).split('.')[-1] == 'FSDP2Strategy'


def unshard(cfg: Config) -> bool:
    """Drop a config's sharded engine (FlexibleRunner + FSDP2Strategy), in place, for mmengine's plain Runner:
    evaluation, and any single-process run, computes unsharded (the tools load sharded checkpoints whole).
    Returns whether there was one."""
    if not is_sharded_config(cfg):
        return False
    cfg.pop('strategy')
    if cfg.get('runner_type') == 'FlexibleRunner':
        cfg.pop('runner_type')
    return True


def check_config_values(cfg: Config) -> None:
    """Values that torch or mmengine would refuse later without naming the key (or, for a schedule of
    0 iterations, accept and do nothing): loader batch sizes and workers, the schedule's lengths."""
    def need(key, value, ok, what):
        if value is not None and not (isinstance(value, int) and not isinstance(value, bool) and ok(value)):
            raise ConfigValueError(f'{key}={value!r}: {what}')
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        spec = cfg.get(loader)
        if isinstance(spec, dict):
            need(f'{loader}.batch_size', spec.get('batch_size'), lambda v: v >= 1, 'needs a whole number >= 1')
            need(f'{loader}.num_workers', spec.get('num_workers'), lambda v: v >= 0, 'needs a whole number >= 0')
    train = cfg.get('train_cfg')
    if isinstance(train, dict):
        for key in ('max_iters', 'max_epochs', 'val_interval'):
            need(f'train_cfg.{key}', train.get(key), lambda v: v >= 1, 'needs a whole number >= 1')
    if is_sharded_config(cfg) and any(isinstance(h, dict) and str(h.get('type', '')).split('.')[-1] == 'EMAHook'
                                      for h in cfg.get('custom_hooks') or []):
        raise ConfigValueError('custom_hooks has an EMAHook, which FSDP2Strategy does not shard or save: drop it '
                               '(the sharded configs train without EMA)')
    model = cfg.get('model')
    pre = model.get('data_preprocessor') if isinstance(model, dict) else None
    if isinstance(pre, dict) and cfg.get('task') != 'det' and pre.get('size') and pre.get('size_divisor'):
        # mmseg pads a training batch to one of them and asserts that only one is set, at the first iteration
        raise ConfigValueError(f'model.data_preprocessor has size={tuple(pre["size"])} and size_divisor='
                               f'{pre["size_divisor"]}: give one (size pads every batch to that size, '
                               'size_divisor to a multiple)')


STARTUP_CHECK = 'DataModelCheckHook'


def add_startup_check(cfg: Config) -> Config:
    """Add mmdg's ``DataModelCheckHook`` (model vs data at start-up), ``CheckpointDigestHook`` (the method and a
    content digest in every checkpoint written) and ``CheckpointFitHook`` (a loaded checkpoint covers the
    model) to ``cfg.custom_hooks`` unless they are there already; only for configs in the mmdg scope, where
    the hooks are registered."""
    if cfg.get('default_scope') != 'mmdg':
        return cfg
    hooks = list(cfg.get('custom_hooks') or [])
    for name in (STARTUP_CHECK, 'CheckpointDigestHook', 'CheckpointFitHook'):
        if not any(isinstance(h, dict) and str(h.get('type', '')).split('.')[-1] == name for h in hooks):
            hooks.append(dict(type=name))
    cfg.custom_hooks = hooks
    return cfg


_MISSING = object()


def _lookup(cfg, key: str):
    node = cfg._cfg_dict if isinstance(cfg, Config) else cfg
    for part in key.split('.'):
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, (list, tuple)) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return _MISSING
    return node


def _kind(value) -> str:
    if isinstance(value, bool) or isinstance(value, (int, float)):
        return 'number'  # True/False and 0/1 are interchangeable in configs
    if isinstance(value, str):
        return 'string'
    if isinstance(value, (list, tuple)):
        return 'list'
    if isinstance(value, dict):
        return 'dict'
    return type(value).__name__


def check_option_types(cfg: Config, options: dict) -> None:
    """Refuse a ``--cfg-options`` value whose kind (number, string, list, dict) differs from the config's
    value at that key, e.g. ``train_cfg.max_iters=1k`` (a string where the config has a number), which
    would otherwise fail deep inside the run with a ``TypeError`` naming no key. ``None`` on either side
    and keys the config does not have are accepted (modules take arguments the config leaves out)."""
    for key, new in options.items():
        old = _lookup(cfg, key)
        if old is _MISSING or old is None or new is None or _kind(old) == _kind(new):
            continue
        raise ConfigValueError(f'{key}={new!r} is a {_kind(new)}, but the config has a {_kind(old)} there '
                               f'({old!r}); give a {_kind(old)}, e.g. {key}={old!r}')


AMP_DTYPES = {'fp16': 'float16', 'bf16': 'bfloat16'}


def require_amp_device(flag: str = '--amp') -> None:
    """Mixed precision is a GPU feature here: mmengine's AmpOptimWrapper refuses a CPU only after the model is
    built (a long traceback, a work dir left behind), so every tool refuses ``--amp`` up front, alike."""
    import torch
    if not torch.cuda.is_available():
        raise SystemExit(f'error: {flag} needs a GPU (mixed precision runs on CUDA devices; this machine has '
                         'none): run without it')


def apply_amp(cfg: Config, dtype: str = 'fp16') -> Config:
    """Switch the config's optimizer wrapper to mmengine's ``AmpOptimWrapper`` with ``dtype`` autocast
    (``fp16`` with dynamic loss scaling, or ``bf16``, which needs no scaling but keeps mmengine's
    scaler harmlessly). Clip-grad and paramwise settings are kept."""
    if dtype not in AMP_DTYPES:
        raise SystemExit(f'--amp takes one of {sorted(AMP_DTYPES)}, got {dtype!r}')
    require_amp_device()
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
#: loss) rather than a bug: the tools print their message in one line instead of a traceback. Before the
#: loop starts (reading configs, checkpoints and datasets, building the model) these built-in types are
#: input errors; inside the loop only mmdg's own types and ``OSError``s that name a file are.
INPUT_ERRORS = (KeyError, ValueError, OSError, FloatingPointError, TypeError)


#: Errors of the machine, not of the code: reported in one line at any stage.
DISK_FULL = (28, 122)  # ENOSPC, EDQUOT


def is_input_error(exc: BaseException) -> bool:
    if type(exc).__module__.startswith('mmdg.'):
        return True
    if isinstance(exc, OSError) and exc.errno in DISK_FULL:
        return True
    if isinstance(exc, OSError) and getattr(exc, 'filename', None):
        return True
    return isinstance(exc, INPUT_ERRORS) and not RUN_STATE['in_loop']


def interrupted_message() -> str:
    """What Ctrl-C stopped and where the run can go on from."""
    runner = RUN_STATE.get('runner')
    if runner is None or not RUN_STATE.get('in_loop'):
        return 'interrupted (Ctrl-C) before the run started'
    mode = RUN_STATE.get('mode', 'train')
    if mode != 'train':
        return f'interrupted (Ctrl-C) while {"testing" if mode == "test" else "validating"}; no results were written'
    from mmdg.utils.checkpoint import find_resumable_checkpoint
    last = find_resumable_checkpoint(runner.work_dir)
    config = RUN_STATE.get('config') or 'CONFIG'
    if last is None:
        return (f'interrupted (Ctrl-C) at iteration {runner.iter}; no checkpoint was written yet '
                f'(work dir {runner.work_dir})')
    return (f'interrupted (Ctrl-C) at iteration {runner.iter}; last checkpoint: {last}; resume with: '
            f'python tools/train.py {config} --work-dir {runner.work_dir} --resume')


#: Where the demos' generated data lives, and the command that writes it.
DEMO_DATA = (('data/demo_det', 'python tools/generate_demo_data.py --det'),
             ('data/demo', 'python tools/generate_demo_data.py'))


def missing_data_hint(exc: BaseException, msg: str) -> str:
    """For a full disk: what survived. For a missing file or folder: the command that generates the demo data it belongs to, else where the
    real datasets' layouts and converters are described (one line, or nothing for other errors)."""
    if isinstance(exc, OSError) and exc.errno in DISK_FULL:
        return ('(the disk is full: free space where the run writes; checkpoints and reports are written '
                'atomically, so the last complete ones are intact)\n')
    if not isinstance(exc, FileNotFoundError):  # DatasetLayoutError is one
        return ''
    import re
    for root, command in DEMO_DATA:
        if re.search(rf'(?<![\w/.-]){re.escape(root)}(?![\w-])', msg):
            return f'(the demo data is generated by: {command})\n'
    if 'data/' in msg or 'dataset' in msg:
        return '(dataset layouts, converters and checks: docs/datasets.md)\n'
    return ''


@contextlib.contextmanager
def input_errors_as_messages():
    """Turn input errors (:func:`is_input_error`) into ``error: <Type>: <message>`` and exit status 1,
    and Ctrl-C into one line naming the last checkpoint (exit status 130). Anything else keeps its
    traceback, as does everything with ``MMDG_DEBUG=1``."""
    try:
        yield
    except KeyboardInterrupt:
        if _debug():
            raise
        sys.stderr.write(interrupted_message() + '\n')
        raise SystemExit(130) from None
    except Exception as exc:  # noqa: BLE001 - re-raised unless it is an input error
        if _debug() or not is_input_error(exc):
            raise
        msg = exc.args[0] if isinstance(exc, KeyError) and exc.args else str(exc)
        if 'Original Traceback' in msg:  # raised in a DataLoader worker: its last line is the error itself
            msg = msg.strip().splitlines()[-1].split(': ', 1)[-1]
        sys.stderr.write(f'error: {type(exc).__name__}: {msg}\n{missing_data_hint(exc, msg)}'
                         '(MMDG_DEBUG=1 shows the traceback)\n')
        raise SystemExit(1) from None


def setup_cpu_distributed(cfg: Config) -> Config:
    """Make a ``--launcher pytorch`` run work without GPUs. mmengine's launcher calls
    ``torch.cuda.set_device`` and DDP gets ``device_ids=[LOCAL_RANK]``, both of which fail on CPU, so the
    gloo process group is started here (mmengine then skips its own start) and DDP is wrapped without
    device ids. Only when asked for (``MMDG_CPU_DDP=1``, or ``--cpu-ddp`` of the dist scripts): a GPU job
    whose CUDA is missing must stop, not train for days on CPU."""
    import torch
    import torch.distributed as dist
    if cfg.get('launcher', 'none') != 'pytorch' or torch.cuda.is_available():
        return cfg
    if os.environ.get('MMDG_CPU_DDP', '').lower() not in ('1', 'true', 'yes'):
        raise SystemExit('error: --launcher pytorch found no CUDA device; for multi-process training on CPU '
                         '(gloo) ask for it explicitly: MMDG_CPU_DDP=1, or tools/dist_train.sh ... --cpu-ddp')
    # assigned back: Config.setdefault returns a converted copy when the key is missing
    env_cfg = dict(cfg.get('env_cfg') or {})
    env_cfg['dist_cfg'] = {**dict(env_cfg.get('dist_cfg') or {}), 'backend': 'gloo'}
    cfg.env_cfg = env_cfg
    if cfg.get('model_wrapper_cfg') is None:
        cfg.model_wrapper_cfg = dict(type='MMDistributedDataParallel', device_ids=None, broadcast_buffers=False,
                                     find_unused_parameters=cfg.get('find_unused_parameters', False))
    if not dist.is_initialized():
        dist.init_process_group('gloo')  # env:// set by torchrun (RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT)
    return cfg


def add_cfg_options(parser) -> None:
    """``--cfg-options`` as every OpenMMLab tool spells it."""
    from mmengine.config import DictAction
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config entries, e.g. train_dataloader.batch_size=2')


def quiet_model_logs(level: int = None) -> None:
    """Keep mmengine's info records (one per parameter when a model's ``init_weights`` runs: hundreds of
    lines) off the console of a tool that builds models without a runner; warnings still show. mmengine logs
    through its current ``MMLogger``, which ``logging.getLogger('mmengine')`` does not reach."""
    import logging

    from mmengine.logging import MMLogger
    MMLogger.get_current_instance().setLevel(logging.WARNING if level is None else level)


def load_scoped_config(path: str, cfg_options=None) -> Config:
    """The config with its options merged and its default scope set: mmseg's own analysis tools fail on
    mmdg configs because they force the 'mmseg' scope, where TimmViT and the mmdg datasets do not exist."""
    from mmengine.registry import init_default_scope
    quiet_model_logs()
    cfg = load_tool_config(path, cfg_options)
    init_default_scope(cfg.get('default_scope', 'mmdg'))
    return cfg


def savefig(fig, path: str, dpi: int = 90) -> None:
    """A matplotlib figure written atomically (a killed run leaves the old picture or the new one)."""
    from mmdg.utils.checkpoint import atomic_write
    fmt = osp.splitext(path)[1].lstrip('.') or 'png'
    atomic_write(path, lambda f: fig.savefig(f, dpi=dpi, format=fmt))
