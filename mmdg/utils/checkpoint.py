"""Safe checkpoint loading for mmengine 0.10.7 on torch >= 2.6.

torch >= 2.6 unpickles with ``weights_only=True`` by default and mmengine 0.10.7 calls ``torch.load``
without arguments, so every checkpoint that mmengine saved (with its message hub and numpy scalars)
fails to load. Instead of switching the safety off, we re-register mmengine's local-file loader with a
``weights_only`` load that allow-lists exactly the non-tensor types mmengine writes. Anything else in a
pickle (a crafted ``__reduce__`` that runs code, say) is refused with :class:`UnsafeCheckpointError`.
Importing this module (``mmdg.registry`` does) installs the loader.
"""
from __future__ import annotations

import glob
import os
import os.path as osp
import pickle
import re
import zipfile
from typing import Any, Callable, List

import numpy as np
import torch
from mmengine.fileio import LocalBackend
from mmengine.logging import HistoryBuffer

from mmdg.utils.atomic import atomic_write  # noqa: F401  (re-exported: mmdg's writers import it from here)


class CheckpointError(RuntimeError):
    """A checkpoint that cannot be used (missing, truncated, not a checkpoint, or unsafe)."""


class UnsafeCheckpointError(CheckpointError, pickle.UnpicklingError):
    """The pickle references a global that is neither a tensor type nor one mmengine writes."""


def _numpy_globals() -> List[Any]:
    """numpy types found in mmengine checkpoints (message-hub scalars and arrays), under the module
    names numpy 1.x and 2.x pickle them with."""
    items: List[Any] = [np.ndarray, np.dtype]
    core = getattr(np, '_core', None) or np.core
    for mod in ('numpy.core.multiarray', 'numpy._core.multiarray'):
        items.append((core.multiarray._reconstruct, f'{mod}._reconstruct'))
        items.append((core.multiarray.scalar, f'{mod}.scalar'))
    for name in dir(np.dtypes):  # numpy >= 1.25 pickles dtypes as numpy.dtypes.Float64DType etc.
        obj = getattr(np.dtypes, name)
        if isinstance(obj, type) and name.endswith('DType'):
            items.append(obj)
    return items


def _history_buffer_getattr(obj: Any, name: str) -> Any:
    """Stands in for ``getattr`` while unpickling: HistoryBuffer pickles its ``statistics_methods`` as
    ``getattr(buffer, 'mean')`` etc. Only those look-ups are allowed; a general ``getattr`` would let a
    pickle walk from an allowed object to arbitrary code."""
    allowed = {'min', 'max', 'current', 'mean', *HistoryBuffer._statistics_methods}
    if (isinstance(obj, HistoryBuffer) or obj is HistoryBuffer) and name in allowed:
        return getattr(obj, name)
    raise pickle.UnpicklingError(f'Unsupported global: GLOBAL builtins.getattr on {type(obj).__name__}.{name}')


#: The non-tensor globals an mmengine checkpoint may reference.
MMENGINE_SAFE_GLOBALS: List[Any] = [
    HistoryBuffer, *_numpy_globals(),
    (_history_buffer_getattr, 'builtins.getattr'), (_history_buffer_getattr, '__builtin__.getattr'),
]


def _is_safetensors(filename: str) -> bool:
    """A safetensors file: an 8-byte little-endian header length, then a JSON header starting with '{'."""
    if filename.endswith('.safetensors'):
        return True
    with open(filename, 'rb') as f:
        head = f.read(9)
    return len(head) == 9 and head[8:9] == b'{' and 0 < int.from_bytes(head[:8], 'little') < (1 << 27)


def _load_safetensors(filename: str, map_location: Any) -> dict:
    """A ``.safetensors`` file (the format timm and Hugging Face ship weights in) as a tensor dict. It
    holds tensors only, so it needs no allow-list."""
    try:
        from safetensors.torch import load_file
    except ImportError:
        raise CheckpointError(f'{filename} is a safetensors file; reading it needs the safetensors package '
                              '(pip install safetensors)') from None
    device = map_location if isinstance(map_location, str) else 'cpu'
    try:
        return load_file(filename, device=device)
    except Exception as err:  # safetensors raises its own SafetensorError and OSError for broken files
        raise CheckpointError(f'checkpoint {filename} is a corrupt or truncated safetensors file ({err}); '
                              'download it again') from None


#: ``meta`` key of the content digest mmdg writes into its checkpoints (``CheckpointDigestHook``).
DIGEST_KEY = 'mmdg_content_digest'
#: The checkpoint entries the digest covers: every weight a test, a merge or a resume reads.
DIGESTED = ('state_dict', 'ema_state_dict')


def is_sharded_state(ckpt: dict) -> bool:
    """Whether ``ckpt``'s weights are shards (DTensors of a sharded run): no one process sees their bytes."""
    from torch.distributed.tensor import DTensor
    return any(isinstance(t, DTensor) for entry in DIGESTED for t in (ckpt.get(entry) or {}).values())


def content_digest(ckpt: dict) -> str:
    """BLAKE2b over the names, dtypes, shapes and bytes of the tensors in ``ckpt``'s :data:`DIGESTED` entries:
    a flipped byte inside a tensor (which leaves the zip archive readable) changes it."""
    import hashlib
    h = hashlib.blake2b(digest_size=32)
    for entry in DIGESTED:
        for name, t in sorted((ckpt.get(entry) or {}).items()):
            if not torch.is_tensor(t):
                continue
            t = t.detach().cpu().contiguous()
            h.update(f'{entry}/{name}:{t.dtype}:{tuple(t.shape)};'.encode())
            h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b'')
    return h.hexdigest()


def verify_content_digest(ckpt: Any, filename: str) -> None:
    """A checkpoint that carries a digest must match it (files from elsewhere carry none: nothing to check)."""
    expected = ckpt.get('meta', {}).get(DIGEST_KEY) if isinstance(ckpt, dict) and isinstance(ckpt.get('meta'), dict) \
        else None
    if expected and content_digest(ckpt) != expected:
        raise CheckpointError(f'checkpoint {filename} is corrupt: its weights do not match the content digest written '
                              'with them (a disk or copy error changed bytes inside the file); use an older '
                              'checkpoint or copy it again')


def safe_torch_load(filename: str, map_location: Any = 'cpu') -> Any:
    """``torch.load(weights_only=True)`` with mmengine's types allow-listed and clear errors; a
    ``.safetensors`` file is read with the safetensors package."""
    filename = osp.expanduser(filename)
    if osp.isdir(filename):  # a sharded checkpoint (FSDP2Strategy) is a folder; anything else is a mistake
        from mmdg.engine.fsdp import DCP_METADATA, read_sharded_checkpoint
        if osp.exists(osp.join(filename, DCP_METADATA)) or osp.basename(filename).endswith('.pth'):
            return read_sharded_checkpoint(filename)
        raise CheckpointError(f'checkpoint {filename} is a folder, not a file')
    if not osp.isfile(filename):
        raise FileNotFoundError(f'checkpoint {filename} can not be found')
    if os.path.getsize(filename) == 0:
        raise CheckpointError(f'checkpoint {filename} is empty (0 bytes); a copy or download cut short?')
    if _is_safetensors(filename):
        return _load_safetensors(filename, map_location)
    try:
        with torch.serialization.safe_globals(MMENGINE_SAFE_GLOBALS):
            ckpt = torch.load(filename, map_location=map_location, weights_only=True)
        verify_content_digest(ckpt, filename)
        return ckpt
    except pickle.UnpicklingError as err:
        found = re.search(r'(?:Unsupported global|Unsupported operand|GLOBAL)[: ]+(?:GLOBAL )?([\w.]+)', str(err))
        with open(filename, 'rb') as f:
            head = f.read(16)
        # a torch.save file is a zip archive or (legacy) a pickle starting with its protocol marker
        if not found or not head.startswith((b'PK', b'\x80')):  # bytes that are no checkpoint at all
            raise CheckpointError(f'checkpoint {filename} is corrupt or not a PyTorch checkpoint (it starts with '
                                  f'{head!r}); download or copy it again') from None
        raise UnsafeCheckpointError(
            f'refusing to load checkpoint {filename}: its pickle references {found.group(1)}, which is neither a '
            f'tensor nor one of the types mmengine writes. A pickle can run code while it loads, so mmdg loads '
            f'with weights_only=True. If you made this file and trust it, re-save its tensors with '
            f'torch.save(state_dict) and load that.') from None
    except RuntimeError as err:
        if 'zip archive' in str(err) or 'central directory' in str(err) or 'PytorchStreamReader' in str(err):
            raise CheckpointError(f'checkpoint {filename} is truncated or not a PyTorch checkpoint ({err})') from None
        raise
    except EOFError:
        raise CheckpointError(f'checkpoint {filename} is empty or truncated') from None


def load_local_checkpoint(filename: str, map_location: Any) -> Any:
    """mmengine's loader of local paths, replaced by this one (``mmdg.patches``)."""
    return safe_torch_load(filename, map_location)


def atomic_save(obj: Any, path: str) -> None:
    """``torch.save`` through :func:`atomic_write`."""
    atomic_write(path, lambda f: torch.save(obj, f))


class AtomicLocalBackend(LocalBackend):
    """mmengine's local file backend with atomic writes. mmengine saves checkpoints and the
    ``last_checkpoint`` pointer through ``put``/``put_text``, which open the target and write in place, so
    a run killed while saving left a truncated ``iter_N.pth`` (and maybe a pointer to it)."""

    def put(self, obj: bytes, filepath) -> None:
        atomic_write(str(filepath), lambda f: f.write(obj))

    def put_text(self, obj: str, filepath, encoding: str = 'utf-8') -> None:
        atomic_write(str(filepath), lambda f: f.write(obj.encode(encoding)))


def check_state_dict_fits(model: torch.nn.Module, state: dict, source: str) -> None:
    """Raise :class:`CheckpointError` if ``state`` has keys the model lacks or tensors of another shape
    (a checkpoint of another architecture). Missing keys are allowed: adapter-only checkpoints hold
    only the trained parameters, the rest comes from the pre-trained backbone."""
    own = model.state_dict()
    unexpected = sorted(k for k in state if k not in own)
    wrong = [f'{k}: {tuple(v.shape)} in the checkpoint, {tuple(own[k].shape)} in the model'
             for k, v in state.items() if k in own and torch.is_tensor(v) and v.shape != own[k].shape]
    if unexpected or wrong:
        parts = []
        if unexpected:
            parts.append(f'{len(unexpected)} key(s) the model does not have, e.g. {unexpected[:3]}')
        if wrong:
            parts.append(f'{len(wrong)} tensor(s) of another shape, e.g. {wrong[:2]}')
        raise CheckpointError(f'{source} does not fit this model ({type(model).__name__}): ' + '; '.join(parts)
                              + '. Is it a checkpoint of another config?')


def unwrap_state_dict(ckpt: Any, source: str = 'the checkpoint') -> dict:
    """The tensor dict inside a checkpoint (``state_dict`` / ``model`` / ``module`` / ``model_ema`` or flat)."""
    for key in ('state_dict', 'model', 'module', 'model_ema'):
        if isinstance(ckpt, dict) and isinstance(ckpt.get(key), dict):
            return unwrap_state_dict(ckpt[key], source)
    if not isinstance(ckpt, dict) or not all(torch.is_tensor(v) for v in ckpt.values()):
        raise CheckpointError(f'no tensor state dict found in {source}')
    return ckpt


def required_keys(model: torch.nn.Module, adapter_only: bool) -> List[str]:
    """The entries a checkpoint must hold for ``model``: all of them, or for an adapter-only checkpoint (its
    backbone comes from the pre-trained file) everything outside the backbone and what the backbone trains."""
    own = model.state_dict()
    if not adapter_only:
        return list(own)
    trained = {n for n, p in model.named_parameters(remove_duplicate=False) if p.requires_grad}
    return [k for k in own if not k.startswith('backbone.') or k in trained]


def check_state_dict_covers(model: torch.nn.Module, state: dict, meta: dict, source: str) -> None:
    """:func:`check_state_dict_fits`, then every :func:`required_keys` entry present: a checkpoint that lacks
    weights the model expects from it would leave them random (a bare re-saved adapter-only checkpoint, an
    empty ``state_dict``, another architecture) and score that without a word."""
    check_state_dict_fits(model, state, source)
    adapter_only = bool(meta.get('mmdg_adapter_only'))
    missing = [k for k in required_keys(model, adapter_only) if k not in state]
    if missing:
        hint = ('' if adapter_only else '; an adapter-only checkpoint must keep its meta (mmdg_adapter_only=True), '
                'so that the backbone comes from the pre-trained file')
        raise CheckpointError(f'{source} lacks {len(missing)} of the {len(model.state_dict())} weights this model '
                              f'({type(model).__name__}) expects from it, e.g. {missing[:3]}: they would stay random'
                              + hint)


def load_checked(model: torch.nn.Module, checkpoint: str, ckpt: Any) -> dict:
    """Load ``ckpt`` (the content of the file ``checkpoint``, read by :func:`safe_torch_load`) into
    ``model`` after :func:`check_state_dict_covers`; returns the checkpoint's ``meta`` (empty if none)."""
    state = unwrap_state_dict(ckpt, checkpoint)
    state = {k[len('module.'):] if k.startswith('module.') else k: v for k, v in state.items()}  # DDP-saved
    meta = ckpt.get('meta', {}) if isinstance(ckpt, dict) else {}
    check_state_dict_covers(model, state, meta if isinstance(meta, dict) else {}, checkpoint)
    model.load_state_dict(state, strict=False)
    return meta


#: ``meta`` key of the tuning method a checkpoint was trained with (``CheckpointDigestHook`` writes it).
METHOD_KEY = 'mmdg_method'


def adapter_method(backbone_cfg: Any) -> str:
    """The tuning method a backbone config builds: its adapter type, or ``'no adapter'``."""
    adapter = (backbone_cfg or {}).get('adapter') or {}
    return str(adapter.get('type')) if adapter.get('type') else 'no adapter'


def fit_config_to_checkpoint(model_cfg: Any, ckpt: Any, source: str = '') -> dict:
    """Adjust a model config (in place) to what ``ckpt`` holds; returns its ``meta``.

    - a full checkpoint holds every backbone weight: the ``pretrained`` file is not read (nor needed);
    - an adapter-only one (``meta.mmdg_adapter_only``) loads over the ``pretrained`` backbone;
    - a merged one (``meta.merged_from``, from ``tools/merge_adapters.py``) loads into the model without
      adapters;
    - one trained with another method (``meta.mmdg_method``) than the config's adapter is refused.
    """
    meta = ckpt.get('meta', {}) if isinstance(ckpt, dict) else {}
    backbone = model_cfg.get('backbone')
    if backbone is None:
        return meta
    trained = meta.get(METHOD_KEY)
    built = adapter_method(backbone)
    if trained and not meta.get('merged_from') and trained != built:
        # keys and shapes can match (LoRA and PiSSA have the same factors): the weights would mean another model
        raise CheckpointError(f'{source or "the checkpoint"} was trained with {trained}, but the config builds '
                              f'{built}: pass the config it was trained with')
    if meta.get('merged_from') and backbone.get('adapter'):
        print(f'{source or "the checkpoint"} holds merged weights: the model is built without adapters')
        backbone['adapter'] = None
    if not meta.get('mmdg_adapter_only') and 'pretrained' in backbone:
        backbone['pretrained'] = None
    return meta


def checkpoint_exists(path: str) -> bool:
    """A checkpoint file, or a sharded checkpoint's folder (``FSDP2Strategy``), is at ``path``."""
    from mmdg.engine.fsdp import DCP_METADATA
    return osp.isfile(path) or osp.isfile(osp.join(path, DCP_METADATA))


def is_complete_checkpoint(path: str) -> bool:
    """Whether ``path`` is a whole ``torch.save`` zip archive (its central directory, written last, is
    readable): cheap, and false for a file cut short by a kill."""

    try:
        with zipfile.ZipFile(path) as z:
            return bool(z.namelist())
    except (OSError, zipfile.BadZipFile):
        return False


def find_resumable_checkpoint(work_dir: str) -> Any:
    """The checkpoint ``--resume`` should continue from: the one ``work_dir/last_checkpoint`` names if it
    is complete and reads whole (its content digest matching), else the newest such ``iter_*.pth`` /
    ``epoch_*.pth`` (None if there is none); a skipped one is named on the console.
    Guards against a pointer that is empty or names a file cut short (runs killed while saving with
    mmengine's non-atomic writer, before mmdg's atomic one)."""

    candidates = []
    pointer = osp.join(work_dir, 'last_checkpoint')
    if osp.isfile(pointer):
        with open(pointer) as f:
            named = f.read().strip()
        if named:
            candidates.append(named)

    def step(p):
        m = re.search(r'(?:iter|epoch)_(\d+)\.pth$', p)
        return int(m.group(1)) if m else -1
    found = glob.glob(osp.join(work_dir, 'iter_*.pth')) + glob.glob(osp.join(work_dir, 'epoch_*.pth'))
    candidates += sorted(found, key=step, reverse=True)
    from mmdg.engine.fsdp import is_sharded_checkpoint
    for path in candidates:
        if is_sharded_checkpoint(path):  # complete (its metadata is written last); the shards stay where they are
            return path
        if osp.isfile(path) and is_complete_checkpoint(path):
            try:  # read whole: a file whose bytes changed after it was written is no place to resume from
                safe_torch_load(path)
            except CheckpointError as err:
                print(f'--resume: skipping {path}: {err}')
                continue
            return path
    return None


def build_and_load(model_cfg: Any, checkpoint: str, build: Callable[[], torch.nn.Module]) -> torch.nn.Module:
    """The one path by which the tools (test, cross-domain evaluation, merging) load a trained model:
    read ``checkpoint`` safely, :func:`fit_config_to_checkpoint` ``model_cfg`` (in place), call ``build()``
    for the module to load into, then :func:`load_checked`; the checkpoint's ``dataset_meta`` (class
    names, palette) is set on the module when it has one."""
    ckpt = safe_torch_load(checkpoint)
    fit_config_to_checkpoint(model_cfg, ckpt, checkpoint)
    model = build()
    meta = load_checked(model, checkpoint, ckpt)
    if meta.get('dataset_meta'):
        model.dataset_meta = meta['dataset_meta']
    return model
