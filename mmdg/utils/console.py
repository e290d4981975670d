"""Console and experiment-tracking switches shared by the command-line tools.

``build_runner(cfg)`` builds the config's runner with a quiet console: progress (mmengine's
``Iter(...)`` / ``Epoch(...)`` lines), warnings and errors reach the screen; the environment, the full
config, the hook order and the optimizer's per-parameter lines go to the log file in the run's folder
only. ``add_vis_backend(cfg, 'tensorboard' | 'wandb')`` adds a tracking backend to the config's
visualizer (scalars, and the images the visualisation hooks draw).
"""
import importlib.util
import logging
import warnings

from mmengine.config import Config
from mmengine.hooks import Hook
from mmengine.runner import Runner

#: ``--vis-backend`` name -> (mmengine backend, package it needs).
VIS_BACKENDS = {'local': ('LocalVisBackend', None), 'tensorboard': ('TensorboardVisBackend', 'tensorboard'),
                'wandb': ('WandbVisBackend', 'wandb')}
#: Log lines that stay on the console besides warnings: mmengine's LoggerHook progress and results, and
#: the events a user watches a long run for (checkpoints written, a resume and what it restored).
PROGRESS_PREFIXES = ('Iter(', 'Epoch(', 'Saving checkpoint', 'The best checkpoint', 'resumed',
                     'torch random state')


def add_vis_backend(cfg: Config, name: str) -> Config:
    """Append mmengine's backend ``name`` (``local``, ``tensorboard``, ``wandb``) to ``cfg.visualizer``.
    A backend whose package is missing stops here with the install command, not after the model is built."""
    if name not in VIS_BACKENDS:
        raise SystemExit(f'--vis-backend takes one of {sorted(VIS_BACKENDS)}, got {name!r}')
    backend, package = VIS_BACKENDS[name]
    if package and importlib.util.find_spec(package) is None:
        raise SystemExit(f'--vis-backend {name} needs the {package} package: .venv/bin/pip install {package}')
    visualizer = cfg.setdefault('visualizer', dict(type='Visualizer'))
    backends = list(visualizer.get('vis_backends') or [])
    if not any(b.get('type') == backend for b in backends):
        backends.append(dict(type=backend))
    visualizer['vis_backends'] = backends
    return cfg


def add_vis_backend_argument(parser) -> None:
    """``--vis-backend {local,tensorboard,wandb}`` (repeatable) on a tool's argument parser."""
    parser.add_argument('--vis-backend', action='append', choices=sorted(VIS_BACKENDS), default=[],
                        help='also log to this backend (repeatable); tensorboard / wandb need their package')


#: Warnings that say nothing a user can act on and bury the ones that matter (mmengine's optimizer
#: constructor alone warns for every frozen parameter: 74 lines in the SoRA demo). The log file keeps them.
ROUTINE_WARNINGS = (
    'since its requires_grad=False',  # one per frozen parameter: the intended state of every PEFT run
    # mmengine's notices about its own file-client API, raised from inside mmengine / mmseg: nothing to act on
    '"FileClient" will be deprecated', '"HardDiskBackend" is the alias of "LocalBackend"',
)


class ConsoleFilter(logging.Filter):
    """Lets through warnings and errors (but :data:`ROUTINE_WARNINGS`), and info records that are progress
    or results."""

    def filter(self, record: logging.LogRecord) -> bool:
        msg = str(record.msg)
        if record.levelno >= logging.WARNING:
            return not any(pattern in msg for pattern in ROUTINE_WARNINGS)
        return msg.lstrip().startswith(PROGRESS_PREFIXES)


def quiet_logger(logger: logging.Logger) -> logging.Logger:
    """Filter the console handler of ``logger`` (an ``MMLogger``); its file handler keeps every record."""
    for handler in logger.handlers:
        if isinstance(handler, logging.StreamHandler) and not isinstance(handler, logging.FileHandler):
            if not any(isinstance(f, ConsoleFilter) for f in handler.filters):
                handler.addFilter(ConsoleFilter())
    return logger


def warnings_to_log_file(logger: logging.Logger) -> None:
    """Python warnings (the libraries' deprecation notices while the model is built) as info records
    of ``logger``: in its file, off a quiet console."""
    def show(message, category, filename, lineno, file=None, line=None):
        logger.info(f'{category.__name__}: {message} ({filename}:{lineno})')
    warnings.showwarning = show


class EvalProgressHook(Hook):
    """A progress bar with its ETA on stderr while a quiet console validates or tests (mmengine's own lines
    come every ``LoggerHook.interval`` batches: one line in minutes for a small test set). Main process only."""

    priority = 'VERY_LOW'

    def __init__(self):
        self._bar = None

    def _start(self, runner, loop, desc: str) -> None:
        from mmengine.dist import is_main_process
        from tqdm import tqdm
        total = len(getattr(loop, 'dataloader', []) or [])
        if is_main_process() and total:
            self._bar = tqdm(total=total, desc=desc, unit='batch', dynamic_ncols=True)

    def _step(self) -> None:
        if self._bar is not None:
            self._bar.update(1)

    def _end(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def before_val_epoch(self, runner) -> None:
        self._start(runner, runner.val_loop, 'val')

    def after_val_iter(self, runner, batch_idx, data_batch=None, outputs=None) -> None:
        self._step()

    def after_val_epoch(self, runner, metrics=None) -> None:
        self._end()

    def before_test_epoch(self, runner) -> None:
        self._start(runner, runner.test_loop, 'test')

    def after_test_iter(self, runner, batch_idx, data_batch=None, outputs=None) -> None:
        self._step()

    def after_test_epoch(self, runner, metrics=None) -> None:
        self._end()


class QuietRunner(Runner):
    """mmengine's ``Runner`` whose logger's console handler is filtered by :class:`ConsoleFilter` from the
    start (the environment and the config are logged while the runner is built, before any hook runs);
    Python warnings go to the log file."""

    def build_logger(self, *args, **kwargs):
        logger = quiet_logger(super().build_logger(*args, **kwargs))
        warnings_to_log_file(logger)
        return logger


def quiet_console(cfg: Config) -> Config:
    """Mark ``cfg`` for a quiet console (what :func:`build_runner` reads)."""
    cfg.quiet_console = True
    return cfg


def build_runner(cfg: Config, quiet: bool = None) -> Runner:
    """The runner of ``cfg`` (its ``runner_type`` if it names one), with a quiet console when ``quiet``
    (default: ``cfg.quiet_console``, set by :func:`quiet_console`)."""
    from mmdg.utils.tool_config import track_run
    quiet = cfg.get('quiet_console', False) if quiet is None else quiet
    if 'runner_type' in cfg:
        from mmengine.registry import RUNNERS
        runner = RUNNERS.build(cfg)
        if quiet:  # the config was logged already; what follows is filtered
            quiet_logger(runner.logger)
    else:
        runner = (QuietRunner if quiet else Runner).from_cfg(cfg)
    if quiet:
        runner.register_hook(EvalProgressHook())
    return track_run(runner)


def add_console_arguments(parser) -> None:
    """``--vis-backend`` (repeatable) and ``--verbose`` (the full log on the console too) on a tool's parser."""
    add_vis_backend_argument(parser)
    parser.add_argument('--verbose', action='store_true', help='the full log (environment, config) on the console too')


def apply_console_args(cfg: Config, args) -> Config:
    """What :func:`add_console_arguments` asked for: the tracking backends, and a quiet console unless
    ``--verbose``. A tool then builds its runner with :func:`build_runner`."""
    for name in getattr(args, 'vis_backend', None) or ():
        add_vis_backend(cfg, name)
    if not getattr(args, 'verbose', False):
        quiet_console(cfg)
    return cfg
