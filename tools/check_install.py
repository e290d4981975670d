"""The installer's two decisions about mmcv, in one testable place (used by tools/install_env.sh).

``--plan``: which mmcv ops to build for this torch, printed as ``OPS ARCH_LIST CACHE_TAG CPATH``:
CUDA ops whenever torch is a CUDA build and ``nvcc`` exists and finds the CUDA headers torch's build
needs (``MMCV_OPS=auto``, the default), for the visible GPUs' architectures or, on a login node without
a GPU, :data:`DEFAULT_ARCHS`. CPATH (``-``: none) names header folders the build must add: those of torch's
NVIDIA wheels when the toolkit is compiler-only.
``--verify``: the final check; it fails loudly when torch sees a GPU but mmcv's ops lack CUDA kernels
(Mask2Former's deformable attention would otherwise fail at the first GPU step).
"""
import argparse
import glob
import os
import re
import shutil
import subprocess
import sys
import tempfile

#: A100, RTX 30xx / A40, L40 / RTX 40xx, H100 / H200: the GPUs DG training runs on today.
DEFAULT_ARCHS = '8.0;8.6;8.9;9.0'


def _cuda_home_from_env():
    return os.environ.get('CUDA_HOME') or os.environ.get('CUDA_PATH')


def find_nvcc():
    cuda_home = _cuda_home_from_env()
    if cuda_home and os.access(os.path.join(cuda_home, 'bin', 'nvcc'), os.X_OK):
        return os.path.join(cuda_home, 'bin', 'nvcc')
    return shutil.which('nvcc')


#: What torch's CUDA headers include (ATen/cuda/CUDAContextLight.h): an nvcc-only toolkit (common in
#: containers) lacks the math libraries' headers and fails mmcv's build after minutes of compiling.
CUDA_BUILD_HEADERS = ('cuda_runtime.h', 'cublas_v2.h', 'cusparse.h')


def pip_cuda_include_dirs():
    """The include folders of the NVIDIA wheels installed beside torch (``site-packages/nvidia/*/include``):
    they hold the cuBLAS / cuSPARSE headers that a compiler-only toolkit lacks."""
    import torch
    return sorted(glob.glob(os.path.join(os.path.dirname(os.path.dirname(torch.__file__)), 'nvidia', '*', 'include')))


def cuda_toolkit_problem(nvcc: str, cpath: str = ''):
    """None when ``nvcc`` can preprocess :data:`CUDA_BUILD_HEADERS` with the include path torch's build
    uses ($CUDA_HOME/include, else nvcc's ../include; plus ``cpath`` as ``CPATH``), else nvcc's first
    error line. Takes ~0.3 s."""
    cuda_home = _cuda_home_from_env() or os.path.dirname(os.path.dirname(nvcc))
    env = dict(os.environ, CPATH=os.pathsep.join(p for p in (cpath, os.environ.get('CPATH', '')) if p))
    with tempfile.TemporaryDirectory() as tmp:
        src = os.path.join(tmp, 'probe.cu')
        with open(src, 'w') as f:
            f.writelines(f'#include <{h}>\n' for h in CUDA_BUILD_HEADERS)
        try:
            res = subprocess.run([nvcc, '-E', src, '-I', os.path.join(cuda_home, 'include'), '-o', os.devnull],
                                 capture_output=True, text=True, timeout=120, env=env)
        except (OSError, subprocess.TimeoutExpired) as exc:
            return f'{nvcc} did not run: {exc}'
    if res.returncode == 0:
        return None
    lines = [re.sub(r'^\S*probe\.cu:[\d:]*\s*', '', ln.strip()) for ln in (res.stderr + res.stdout).splitlines()]
    lines = [ln for ln in lines if ln]
    return next((ln for ln in lines if 'error' in ln), lines[0] if lines else f'exit status {res.returncode}')


def plan(mode: str):
    import torch
    cuda = torch.version.cuda
    if mode not in ('auto', 'cuda', 'cpu'):
        raise SystemExit(f'MMCV_OPS must be auto, cuda or cpu (got {mode!r})')
    nvcc = find_nvcc()
    problem = cuda_toolkit_problem(nvcc) if cuda and nvcc and mode != 'cpu' else None
    cpath = ''
    if problem:  # a compiler-only toolkit beside torch's NVIDIA wheels, which carry the missing headers
        dirs = os.pathsep.join(pip_cuda_include_dirs())
        if dirs and cuda_toolkit_problem(nvcc, dirs) is None:
            problem, cpath = None, dirs
            print(f'[install] {nvcc} lacks some CUDA headers; using those of torch\'s NVIDIA wheels '
                  '(site-packages/nvidia/*/include)', file=sys.stderr)
    if mode == 'auto':
        if problem:
            print(f'[install] note: {nvcc} cannot build mmcv\'s CUDA ops ({problem}); building CPU ops. '
                  'For a GPU, point CUDA_HOME at a full CUDA toolkit and run make install MMCV_OPS=cuda',
                  file=sys.stderr)
        mode = 'cuda' if cuda and nvcc and not problem else 'cpu'
    torch_tag = f"torch-{torch.__version__.replace('+', '_')}_cuda-{cuda or 'none'}"
    if mode == 'cpu':
        return 'cpu', '-', f'{torch_tag}_ops-cpu', '-'
    if not cuda:
        raise SystemExit(f'MMCV_OPS=cuda but torch {torch.__version__} is a CPU build')
    if not nvcc:
        raise SystemExit('MMCV_OPS=cuda but nvcc is neither on PATH nor in $CUDA_HOME/bin')
    if problem:
        raise SystemExit(f'MMCV_OPS=cuda but {nvcc} cannot build mmcv\'s CUDA ops: {problem}. Point CUDA_HOME at '
                         f'a CUDA toolkit with the cuBLAS and cuSPARSE headers ({", ".join(CUDA_BUILD_HEADERS)})')
    archs = os.environ.get('TORCH_CUDA_ARCH_LIST')
    if not archs and torch.cuda.is_available():
        archs = ';'.join(sorted({'%d.%d' % torch.cuda.get_device_capability(i)
                                 for i in range(torch.cuda.device_count())}))
    archs = archs or DEFAULT_ARCHS
    return 'cuda', archs, f"{torch_tag}_ops-cuda-{archs.replace(';', '_').replace(' ', '_')}", cpath or '-'


def verify(want_cuda_ops: bool = False) -> str:
    import mmcv
    import mmdet
    import mmengine
    import mmseg
    import timm
    import torch
    from mmcv.ops import get_compiling_cuda_version, nms  # noqa: F401 (fails if mmcv was built without ops)
    has_cuda_ops = get_compiling_cuda_version() != 'not available'
    if (torch.cuda.is_available() or want_cuda_ops) and not has_cuda_ops:
        raise SystemExit('[install] FAILED: ' + ('torch sees a GPU' if torch.cuda.is_available() else
                                                  'CUDA ops were asked for') +
                         ' but mmcv was built without CUDA ops (Mask2Former would fail on the GPU). '
                         'Rebuild with nvcc on PATH: make install MMCV_OPS=cuda')
    ops = f'CUDA {get_compiling_cuda_version()} ops' if has_cuda_ops else 'CPU ops'
    return (f'[install] ok: torch {torch.__version__}, mmcv {mmcv.__version__} ({ops}), mmengine '
            f'{mmengine.__version__}, mmseg {mmseg.__version__}, mmdet {mmdet.__version__}, timm {timm.__version__}')


if __name__ == '__main__':
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument('--plan', metavar='MMCV_OPS', help='auto, cuda or cpu')
    group.add_argument('--verify', action='store_true')
    parser.add_argument('--want-cuda-ops', action='store_true')
    args = parser.parse_args()
    if args.plan:
        print(*plan(args.plan))
    else:
        print(verify(args.want_cuda_ops))
    sys.exit(0)
