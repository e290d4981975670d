"""Safe checkpoint loading for mmengine 0.10.7 on torch >= 2.6.

torch >= 2.6 unpickles with ``weights_only=True`` by default and mmengine 0.10.7 calls ``torch.load``
without arguments, so every checkpoint that mmengine saved (with its message hub and numpy scalars)
fails to load. Instead of switching the safety off, we re-register mmengine's local-file loader with a
``weights_only`` load that allow-lists exactly the non-tensor types mmengine writes. Anything else in a
pickle (a crafted ``__reduce__`` that runs code, say) is refused with :class:`UnsafeCheckpointError`.
Importing this module (``mmdg.registry`` does) installs the loader.
"""
from __future__ import annotations

import os.path as osp
import pickle
import re
from typing import Any, List

import numpy as np
import torch
from mmengine.logging import HistoryBuffer
from mmengine.runner.checkpoint import CheckpointLoader


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


def safe_torch_load(filename: str, map_location: Any = 'cpu') -> Any:
    """``torch.load(weights_only=True)`` with mmengine's types allow-listed and clear errors."""
    filename = osp.expanduser(filename)
    if not osp.isfile(filename):
        raise FileNotFoundError(f'checkpoint {filename} can not be found')
    try:
        with torch.serialization.safe_globals(MMENGINE_SAFE_GLOBALS):
            return torch.load(filename, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:
        found = re.search(r'(?:Unsupported global|Unsupported operand|GLOBAL)[: ]+(?:GLOBAL )?([\w.]+)', str(err))
        what = found.group(1) if found else 'a non-allow-listed object'
        raise UnsafeCheckpointError(
            f'refusing to load checkpoint {filename}: its pickle references {what}, which is neither a tensor '
            f'nor one of the types mmengine writes. A pickle can run code while it loads, so mmdg loads '
            f'with weights_only=True. If you made this file and trust it, re-save its tensors with '
            f'torch.save(state_dict) and load that.') from None
    except RuntimeError as err:
        if 'zip archive' in str(err) or 'central directory' in str(err) or 'PytorchStreamReader' in str(err):
            raise CheckpointError(f'checkpoint {filename} is truncated or not a PyTorch checkpoint ({err})') from None
        raise
    except EOFError:
        raise CheckpointError(f'checkpoint {filename} is empty or truncated') from None


def _load_from_local(filename: str, map_location: Any) -> Any:
    return safe_torch_load(filename, map_location)


# Replaces mmengine's loader for local paths (prefix ''), used by load_from, resume and init_model.
CheckpointLoader.register_scheme(prefixes='', force=True)(_load_from_local)


def atomic_save(obj: Any, path: str) -> None:
    """``torch.save`` to a temporary file in the same folder, then rename: a crash never leaves a
    half-written file under ``path``."""
    import os
    import tempfile
    folder = osp.dirname(osp.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix='.tmp-', suffix='.pth', dir=folder)
    try:
        with os.fdopen(fd, 'wb') as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if osp.exists(tmp):
            os.remove(tmp)
        raise
