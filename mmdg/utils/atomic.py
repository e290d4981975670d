"""Writing files so that a crash, a kill or a full disk leaves the old file or the complete new one, never a
truncated one, and cleaning up the temporaries a killed writer left."""
import contextlib
import glob
import io
import os
import os.path as osp
import re
import shutil
import tempfile
from typing import IO, Callable, List, Optional


def _umask() -> int:
    """The process's umask (read without changing it where /proc allows)."""
    try:
        with open('/proc/self/status') as f:
            for line in f:
                if line.startswith('Umask:'):
                    return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


#: Temporary files of a write in progress (``<prefix><pid>-<name>``): hidden, and skipped by the file listers.
TMP_PREFIX = '.mmdg-tmp-'


def remove_stale_temporaries(folder: str) -> List[str]:
    """Remove the temporary files a killed writer left in ``folder`` (its process is gone; a running
    writer's, this process's included, are kept); returns the names removed."""
    removed = []
    for path in glob.glob(osp.join(folder, f'{TMP_PREFIX}*')):
        m = re.match(rf'{re.escape(TMP_PREFIX)}(\d+)-', osp.basename(path))
        if m and not pid_alive(int(m.group(1))):
            try:  # a sharded checkpoint is written as a folder
                shutil.rmtree(path) if osp.isdir(path) else os.remove(path)
                removed.append(osp.basename(path))
            except OSError:
                pass
    return removed


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` runs (this one does: its other writes may be in flight on other threads)."""
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def atomic_write(path: str, write: Callable[[IO[bytes]], None]) -> None:
    """``write(f)`` into a temporary file in the folder of ``path``, flushed to disk, then renamed over
    ``path``: a crash or a SIGKILL at any moment leaves either the old file or the complete new one.
    The file gets the permissions a plain ``open(path, 'wb')`` would give (``mkstemp`` makes 0600, which
    teammates could not read); temporaries of an earlier killed writer in the folder are removed."""
    folder = osp.dirname(osp.abspath(path))
    os.makedirs(folder, exist_ok=True)
    remove_stale_temporaries(folder)
    fd, tmp = tempfile.mkstemp(prefix=f'{TMP_PREFIX}{os.getpid()}-', suffix=osp.splitext(path)[1] or '.tmp',
                               dir=folder)
    try:
        # an existing file keeps its mode, as when it is opened for writing; a new one gets the umask's
        os.fchmod(fd, os.stat(path).st_mode & 0o7777 if osp.exists(path) else 0o666 & ~_umask())
        with os.fdopen(fd, 'wb') as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if osp.exists(tmp):
            os.remove(tmp)
        raise


@contextlib.contextmanager
def atomic_open(path: str, mode: str = 'w', newline: Optional[str] = None, encoding: str = 'utf-8'):
    """``with atomic_open(path) as f: f.write(...)`` (or ``json.dump(obj, f)``, a ``csv.writer(f)``): the text
    is collected in memory and written by :func:`atomic_write` when the block ends without an error, so a
    kill or a full disk never leaves a truncated report (the small files tools write: tables, JSON, lists)."""
    if mode not in ('w', 'wb'):
        raise ValueError(f'atomic_open writes whole files: mode "w" or "wb", got {mode!r}')
    buf = io.BytesIO() if mode == 'wb' else io.StringIO(newline=newline)
    yield buf
    data = buf.getvalue()
    atomic_write(path, lambda f: f.write(data if isinstance(data, bytes) else data.encode(encoding)))


class WorkDirBusyError(RuntimeError):
    """Another live training run holds the work dir."""


LOCK_NAME = '.mmdg-train.lock'


@contextlib.contextmanager
def work_dir_lock(work_dir: str):
    """Hold ``work_dir`` for one training run: a second run into the same folder would write its checkpoints
    over the first one's and both would exit 0. The lock file names the holder's pid and host; a lock whose
    process is gone (a killed run) is taken over. Only the main process of a distributed run takes it."""
    import json
    import socket
    if os.environ.get('RANK', '0') not in ('0', ''):
        yield
        return
    os.makedirs(work_dir, exist_ok=True)
    path = osp.join(work_dir, LOCK_NAME)
    me = dict(pid=os.getpid(), host=socket.gethostname())
    for _ in range(2):
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            try:
                holder = json.load(open(path))
            except (OSError, ValueError):
                holder = {}
            pid = holder.get('pid')
            alive = isinstance(pid, int) and pid > 0 and (holder.get('host') != me['host'] or pid_alive(pid))
            if alive and pid != me['pid']:
                raise WorkDirBusyError(
                    f'work dir {work_dir} is in use by another training run (pid {holder.get("pid")} on '
                    f'{holder.get("host")}): wait for it, or give this run another --work-dir '
                    f'(a lock left by a run on another host: delete {path})') from None
            try:  # a killed run's lock (or this process's own, left by an earlier run in it)
                os.remove(path)
            except FileNotFoundError:
                pass
            continue
        with os.fdopen(fd, 'w') as f:
            json.dump(me, f)
        break
    else:
        raise WorkDirBusyError(f'work dir {work_dir}: could not take its lock {path}')
    try:
        yield
    finally:
        try:
            os.remove(path)
        except FileNotFoundError:
            pass


def save_image(path: str, image, rgb: bool = False) -> None:
    """An image array (BGR, as OpenCV; ``rgb=True`` for RGB) or a label map written atomically, encoded by
    its extension (``.png``, ``.jpg``, ...)."""
    import cv2
    import numpy as np
    arr = np.ascontiguousarray(image[..., ::-1] if rgb and image.ndim == 3 else image)
    ok, data = cv2.imencode(osp.splitext(path)[1] or '.png', arr)
    if not ok:
        raise OSError(f'{path}: the image could not be encoded')
    atomic_write(path, lambda f: f.write(data.tobytes()))
