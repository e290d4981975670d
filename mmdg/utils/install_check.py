"""The installer's decisions about mmcv, in one testable place.

tools/install_env.sh runs it as ``python -m mmdg.utils.install_check`` from the repository root, before
mmdg or OpenMMLab is installed: so it imports only the standard library (torch and mmcv inside functions).

``--plan MODE``: which mmcv ops to build for this torch, printed as ``OPS ARCH_LIST CACHE_TAG CPATH REASON``.
``auto`` (the default) builds CUDA ops only where a GPU is visible or TORCH_CUDA_ARCH_LIST names GPUs to
build for, and only after one small ``.cpp`` and one small ``.cu`` compile as mmcv's build compiles them;
otherwise CPU ops, REASON saying why and how to get the other kind. CPATH (``-``: none) names header
folders the build must add: those of torch's NVIDIA wheels when the toolkit is compiler-only.
``--built-ops``: ``cuda`` or ``cpu``, what the installed mmcv has (the environment stamp records it).
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


def pip_cuda_include_dirs():
    """The include folders of the NVIDIA wheels installed beside torch (``site-packages/nvidia/*/include``):
    they hold the cuBLAS / cuSPARSE headers that a compiler-only toolkit lacks."""
    import torch
    return sorted(glob.glob(os.path.join(os.path.dirname(os.path.dirname(torch.__file__)), 'nvidia', '*', 'include')))


def find_cxx():
    """The host C++ compiler setuptools hands mmcv's ``.cpp`` files to ($CXX, else ``c++``)."""
    cxx = os.environ.get('CXX') or 'c++'
    return shutil.which(cxx) or shutil.which('g++')


#: What mmcv's sources include: the CUDA runtime (info.cpp, a host C++ file) and, through torch's CUDA
#: headers (ATen/cuda/CUDAContextLight.h), the math libraries' headers that a compiler-only toolkit lacks.
CUDA_BUILD_HEADERS = ('cuda_runtime_api.h', 'cuda_runtime.h', 'cublas_v2.h', 'cusparse.h')
_PROBE_CPP = ''.join(f'#include <{h}>\n' for h in CUDA_BUILD_HEADERS) + \
    '#include <c10/macros/Macros.h>\nint mmdg_probe() { return static_cast<int>(cudaSuccess); }\n'
_PROBE_CU = _PROBE_CPP + '__global__ void mmdg_probe_kernel(float *x) { x[threadIdx.x] = 0.f; }\n'


def _first_error(text: str, fallback: str) -> str:
    lines = [re.sub(r'^\S*probe\.(cu|cpp)[:(][\d:)]*\s*', '', ln.strip()) for ln in text.splitlines()]
    lines = [ln for ln in lines if ln]
    return next((ln for ln in lines if 'error' in ln), lines[0] if lines else fallback)


def torch_include_dirs():
    """The include folders torch's extension builder (and so mmcv's setup.py) passes to both compilers."""
    from torch.utils.cpp_extension import include_paths
    return include_paths()


def cuda_build_problem(nvcc: str, arch: str, cpath: str = '', cxx=None, include_dirs=None):
    """Compile (``-c``, not only preprocess) one small ``.cpp`` with the host compiler and one small ``.cu``
    with ``nvcc``, with the include folders and ``CPATH`` of mmcv's build: torch's extension include paths
    and $CUDA_HOME/include (else nvcc's ../include), plus ``cpath``. None when both compile, else the
    compiler's first error line. A few seconds; the real build fails the same way only after many minutes."""
    cuda_home = _cuda_home_from_env() or os.path.dirname(os.path.dirname(nvcc))
    cxx = cxx or find_cxx()
    if not cxx:
        return 'no host C++ compiler (c++ / g++ / $CXX) found'
    includes = [f'-I{d}' for d in [*(torch_include_dirs() if include_dirs is None else include_dirs),
                                   os.path.join(cuda_home, 'include')]]
    env = dict(os.environ, CPATH=os.pathsep.join(p for p in (cpath, os.environ.get('CPATH', '')) if p))
    major, minor = (arch.split('.') + ['0'])[:2]
    sm = f'{major}{minor[:1]}'
    with tempfile.TemporaryDirectory() as tmp:
        steps = []
        for name, code, cmd in (
                ('probe.cpp', _PROBE_CPP, [cxx, '-std=c++17', '-fPIC', '-c']),
                ('probe.cu', _PROBE_CU, [nvcc, '-std=c++17', '-c', f'-gencode=arch=compute_{sm},code=sm_{sm}'])):
            src = os.path.join(tmp, name)
            with open(src, 'w') as f:
                f.write(code)
            steps.append(cmd + [src, *includes, '-o', src + '.o'])
        for cmd in steps:
            try:
                res = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env, cwd=tmp)
            except (OSError, subprocess.TimeoutExpired) as exc:
                return f'{cmd[0]} did not run: {exc}'
            if res.returncode:
                return _first_error(res.stderr + res.stdout, f'{os.path.basename(cmd[0])} exit status {res.returncode}')
    return None


def gpu_visible() -> bool:
    import torch
    return torch.cuda.is_available()


def plan(mode: str, wheel_include_dirs=None):
    """``(ops, archs, cache_tag, cpath, reason)``: what to build for ``mode`` (auto, cuda or cpu) here.

    auto builds CUDA ops only where they can be used or are clearly wanted: a GPU is visible, or
    TORCH_CUDA_ARCH_LIST names the GPUs to build for (a cluster's login node). A CPU machine that merely has
    an ``nvcc`` gets CPU ops: compiling CUDA kernels there costs an hour for ops it never runs.
    """
    import torch
    cuda = torch.version.cuda
    if mode not in ('auto', 'cuda', 'cpu'):
        raise SystemExit(f'MMCV_OPS must be auto, cuda or cpu (got {mode!r})')
    torch_tag = f"torch-{torch.__version__.replace('+', '_')}_cuda-{cuda or 'none'}"
    cpu_plan = lambda why: ('cpu', '-', f'{torch_tag}_ops-cpu', '-', why)  # noqa: E731
    to_get_cuda = 'for CUDA ops: MMCV_OPS=cuda, or TORCH_CUDA_ARCH_LIST=<your GPUs, e.g. 9.0>'
    if mode == 'cpu':
        return cpu_plan('MMCV_OPS=cpu; ' + to_get_cuda)
    archs_env = os.environ.get('TORCH_CUDA_ARCH_LIST', '').strip()
    nvcc = find_nvcc()
    if mode == 'auto':
        if not cuda:
            return cpu_plan(f'torch {torch.__version__} is a CPU build')
        if not (archs_env or gpu_visible()):
            return cpu_plan('no GPU visible; ' + to_get_cuda)
        if not nvcc:
            return cpu_plan('no nvcc on PATH or in $CUDA_HOME/bin; for CUDA ops load a CUDA toolkit, then '
                            'make install MMCV_OPS=cuda')
    if not cuda:
        raise SystemExit(f'MMCV_OPS=cuda but torch {torch.__version__} is a CPU build')
    if not nvcc:
        raise SystemExit('MMCV_OPS=cuda but nvcc is neither on PATH nor in $CUDA_HOME/bin')
    archs = archs_env
    if not archs and gpu_visible():
        archs = ';'.join(sorted({'%d.%d' % torch.cuda.get_device_capability(i)
                                 for i in range(torch.cuda.device_count())}))
    archs = archs or DEFAULT_ARCHS
    probe_arch = re.split(r'[;\s]+', archs)[-1].replace('+PTX', '')
    problem, cpath = cuda_build_problem(nvcc, probe_arch), ''
    if problem:  # a compiler-only toolkit beside torch's NVIDIA wheels, which may carry the missing headers
        dirs = os.pathsep.join(pip_cuda_include_dirs() if wheel_include_dirs is None else wheel_include_dirs)
        with_wheels = cuda_build_problem(nvcc, probe_arch, dirs) if dirs else None
        if dirs and with_wheels is None:
            problem, cpath = None, dirs
            print(f'[install] {nvcc} lacks some CUDA headers; using those of torch\'s NVIDIA wheels '
                  '(site-packages/nvidia/*/include)', file=sys.stderr)
        elif dirs:
            problem = f'{problem}; with the headers of torch\'s NVIDIA wheels: {with_wheels}'
    if problem:
        if mode == 'auto':
            return cpu_plan(f'{nvcc} cannot build mmcv\'s CUDA ops ({problem}). For a GPU, point CUDA_HOME at '
                            'a full CUDA toolkit and run make install MMCV_OPS=cuda')
        raise SystemExit(f'MMCV_OPS=cuda but {nvcc} cannot build mmcv\'s CUDA ops: {problem}. Point CUDA_HOME at '
                         f'a full CUDA toolkit (with {", ".join(CUDA_BUILD_HEADERS)})')
    why = (f'TORCH_CUDA_ARCH_LIST={archs}' if archs_env else 'a GPU is visible' if gpu_visible() else 'MMCV_OPS=cuda')
    return ('cuda', archs, f"{torch_tag}_ops-cuda-{archs.replace(';', '_').replace(' ', '_')}", cpath or '-',
            why + '; for CPU ops only: MMCV_OPS=cpu')


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


def built_ops() -> str:
    from mmcv.ops import get_compiling_cuda_version
    return 'cpu' if get_compiling_cuda_version() == 'not available' else 'cuda'


def main(argv=None):
    parser = argparse.ArgumentParser(description='mmdg install check: the mmcv build plan, or the final check')
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument('--plan', metavar='MMCV_OPS', help='auto, cuda or cpu')
    group.add_argument('--verify', action='store_true')
    group.add_argument('--built-ops', action='store_true')
    parser.add_argument('--want-cuda-ops', action='store_true')
    args = parser.parse_args(argv)
    if args.plan:
        print(*plan(args.plan))
    elif args.built_ops:
        print(built_ops())
    else:
        print(verify(args.want_cuda_ops))
    return 0


if __name__ == '__main__':
    sys.exit(main())
