"""mmdg's registries, children of mmsegmentation's.

With ``default_scope = 'mmdg'`` in a config, mmengine imports this module by itself and resolves a
type first in mmdg, then in mmseg, then in mmengine. The ``locations`` make mmengine import the module
that registers a type the first time a registry is searched, so ``Runner.from_cfg``,
``mmseg.apis.init_model`` and the tools all build mmdg configs without anyone importing mmdg by hand.
(mmengine resolves an explicit ``scope.Type`` only for direct children of its root registries, so
``mmdg.X`` cannot be named from another scope; use ``default_scope = 'mmdg'``.)
"""
from mmseg.registry import DATA_SAMPLERS as MMSEG_DATA_SAMPLERS
from mmseg.registry import DATASETS as MMSEG_DATASETS
from mmseg.registry import EVALUATOR as MMSEG_EVALUATOR
from mmseg.registry import HOOKS as MMSEG_HOOKS
from mmseg.registry import LOG_PROCESSORS as MMSEG_LOG_PROCESSORS
from mmseg.registry import LOOPS as MMSEG_LOOPS
from mmseg.registry import METRICS as MMSEG_METRICS
from mmseg.registry import MODEL_WRAPPERS as MMSEG_MODEL_WRAPPERS
from mmseg.registry import MODELS as MMSEG_MODELS
from mmseg.registry import OPTIM_WRAPPER_CONSTRUCTORS as MMSEG_OPTIM_WRAPPER_CONSTRUCTORS
from mmseg.registry import OPTIM_WRAPPERS as MMSEG_OPTIM_WRAPPERS
from mmseg.registry import OPTIMIZERS as MMSEG_OPTIMIZERS
from mmseg.registry import PARAM_SCHEDULERS as MMSEG_PARAM_SCHEDULERS
from mmseg.registry import RUNNERS as MMSEG_RUNNERS
from mmseg.registry import TRANSFORMS as MMSEG_TRANSFORMS
from mmseg.registry import VISBACKENDS as MMSEG_VISBACKENDS
from mmseg.registry import VISUALIZERS as MMSEG_VISUALIZERS
from mmseg.registry import WEIGHT_INITIALIZERS as MMSEG_WEIGHT_INITIALIZERS
from mmengine.registry import Registry
from mmseg.utils import register_all_modules as register_all_mmseg_modules

# A child registry looks its parents up without triggering their lazy imports, so mmseg's modules
# (visualizers, datasets, heads, metrics) are registered here once, before anything is built.
register_all_mmseg_modules(init_default_scope=False)
import mmseg.visualization  # noqa: E402,F401  (not among register_all_modules' imports in mmseg 1.2.2)

MODELS = Registry('model', parent=MMSEG_MODELS, scope='mmdg', locations=['mmdg.models'])
DATASETS = Registry('dataset', parent=MMSEG_DATASETS, scope='mmdg', locations=['mmdg.datasets'])
TRANSFORMS = Registry('transform', parent=MMSEG_TRANSFORMS, scope='mmdg', locations=['mmdg.datasets'])
DATA_SAMPLERS = Registry('data sampler', parent=MMSEG_DATA_SAMPLERS, scope='mmdg', locations=['mmdg.datasets'])
METRICS = Registry('metric', parent=MMSEG_METRICS, scope='mmdg', locations=['mmdg.evaluation'])
EVALUATOR = Registry('evaluator', parent=MMSEG_EVALUATOR, scope='mmdg', locations=['mmdg.evaluation'])
HOOKS = Registry('hook', parent=MMSEG_HOOKS, scope='mmdg', locations=['mmdg.engine'])
OPTIMIZERS = Registry('optimizer', parent=MMSEG_OPTIMIZERS, scope='mmdg', locations=['mmdg.engine'])
OPTIM_WRAPPERS = Registry('optim_wrapper', parent=MMSEG_OPTIM_WRAPPERS, scope='mmdg', locations=['mmdg.engine'])
OPTIM_WRAPPER_CONSTRUCTORS = Registry('optimizer wrapper constructor', parent=MMSEG_OPTIM_WRAPPER_CONSTRUCTORS,
                                      scope='mmdg', locations=['mmdg.engine'])
PARAM_SCHEDULERS = Registry('parameter scheduler', parent=MMSEG_PARAM_SCHEDULERS, scope='mmdg',
                            locations=['mmdg.engine'])
LOOPS = Registry('loop', parent=MMSEG_LOOPS, scope='mmdg', locations=['mmdg.engine'])
RUNNERS = Registry('runner', parent=MMSEG_RUNNERS, scope='mmdg', locations=['mmdg.engine'])
LOG_PROCESSORS = Registry('log_processor', parent=MMSEG_LOG_PROCESSORS, scope='mmdg', locations=['mmdg.engine'])
MODEL_WRAPPERS = Registry('model_wrapper', parent=MMSEG_MODEL_WRAPPERS, scope='mmdg', locations=['mmdg.models'])
WEIGHT_INITIALIZERS = Registry('weight initializer', parent=MMSEG_WEIGHT_INITIALIZERS, scope='mmdg',
                               locations=['mmdg.models'])
VISUALIZERS = Registry('visualizer', parent=MMSEG_VISUALIZERS, scope='mmdg', locations=['mmdg.evaluation'])
VISBACKENDS = Registry('vis_backend', parent=MMSEG_VISBACKENDS, scope='mmdg', locations=['mmdg.evaluation'])

# mmdg's changes to its dependencies (safe and atomic checkpoints, named empty datasets, bf16 deformable
# attention), for every entry point that reaches a registry: see mmdg/patches.py
from mmdg import patches  # noqa: E402

patches.apply()
