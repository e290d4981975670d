"""What the converters of released checkpoints share: the target model built on the meta device, the
default config looked up in the repository, and the conversion run from files to an mmdg checkpoint that
is written atomically with where it came from."""
from __future__ import annotations

import copy
import glob
import os
import os.path as osp
from typing import Any, Callable, Dict, Optional

#: The repository root (configs are looked up relative to it; mmdg is installed editable from it).
REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def find_config(pattern: str, what: str = '') -> str:
    """The first config matching a file-name pattern under the repository (patterns, so that renamed
    schedules still match); ``SystemExit`` naming the pattern when none does."""
    found = sorted(glob.glob(osp.join(REPO, pattern)))
    if not found:
        raise SystemExit(f'no default config{" " + what if what else ""} ({pattern}); pass --config')
    return found[0]


def config_name(config: str) -> str:
    """The config as recorded in a checkpoint: relative to the repository when it lies inside it."""
    name = osp.relpath(osp.abspath(config), REPO)
    return config if name.startswith('..') else name


def build_on_meta(cfg):
    """The config's model on the meta device: its state-dict layout without weights, SVDs or memory (a
    ViT-L SoRA segmentor takes minutes to build on a CPU, for tensors that would all be replaced)."""
    import torch
    from mmengine.registry import init_default_scope
    init_default_scope(cfg.get('default_scope', 'mmdg'))
    from mmdg.registry import MODELS
    model_cfg = copy.deepcopy(cfg.model)
    model_cfg.backbone.pretrained = None
    with torch.device('meta'):
        return MODELS.build(model_cfg)


def load_config(config: str, cfg_options: Optional[dict] = None, adapter_type: Optional[str] = None,
                release: str = 'the released models'):
    """The mmdg config a released checkpoint converts for; with ``adapter_type``, refused unless its
    backbone carries that adapter."""
    from mmengine.config import Config
    if not osp.isfile(config):
        raise SystemExit(f'config file {config} does not exist')
    cfg = Config.fromfile(config)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    if adapter_type is not None:
        adapter = cfg.model.backbone.get('adapter') or {}
        if str(adapter.get('type', '')).lower() != adapter_type.lower():
            raise SystemExit(f'{config} has no {adapter_type} adapter (model.backbone.adapter={adapter or None}); '
                             f'{release} need a {adapter_type} config')
    return cfg


def check_paths(inputs, out: str) -> None:
    """Inputs exist and the output overwrites none of them."""
    for path in inputs:
        if not osp.isfile(path):
            raise SystemExit(f'{path} does not exist')
        if osp.abspath(path) == osp.abspath(out):
            raise SystemExit('refusing to overwrite an input checkpoint; choose another output path')


def save_converted(model, state: Dict[str, Any], out: str, provenance: dict) -> int:
    """Load ``state`` into the meta-built ``model`` (strictly, every key), then write it with
    ``meta.converted_from = provenance`` atomically; returns the number of values written."""
    import torch

    from mmdg.utils.checkpoint import atomic_save
    own = model.state_dict()
    model.load_state_dict({k: v.to(own[k].dtype).contiguous() for k, v in state.items()}, strict=True, assign=True)
    os.makedirs(osp.dirname(osp.abspath(out)) or '.', exist_ok=True)
    atomic_save(dict(state_dict=model.state_dict(), meta=dict(converted_from=provenance)), out)
    return sum(v.numel() for v in state.values() if torch.is_tensor(v))


def run_conversion(convert: Callable[[], None]) -> None:
    """Input errors (a file that does not fit, a corrupt checkpoint) as one-line messages."""
    from mmdg.utils.tool_config import input_errors_as_messages
    with input_errors_as_messages():
        convert()
