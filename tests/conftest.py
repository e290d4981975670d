import os
import os.path as osp
import runpy
import sys
import traceback
from typing import NamedTuple

import pytest
import torch

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
# Real-format files shared by the team; a user's own clone has none, and those tests then skip.
FIXTURES = osp.join(REPO, '..', 'shared', 'fixtures')


@pytest.fixture
def fixtures_dir():
    if not osp.isdir(FIXTURES):
        if os.environ.get('CI', '').lower() in ('1', 'true', 'yes'):  # CI has them: a missing copy is a failure
            pytest.fail('../shared/fixtures is absent under CI=true: the real-format fixture tests cannot run')
        pytest.skip('../shared/fixtures is absent (a user clone): real-format fixture tests skipped')
    return FIXTURES


class ToolRun(NamedTuple):
    """A tool's exit status and output, named as ``subprocess.CompletedProcess`` names them."""
    returncode: int
    stdout: str
    stderr: str


@pytest.fixture
def run_tool(capfd, monkeypatch):
    """``run_tool('train.py', CONFIG, '--work-dir', d)`` runs ``tools/train.py`` in this process, exactly as
    ``python tools/train.py ...`` runs it (the script executed as ``__main__`` with that ``sys.argv``, the
    working directory the repository), and returns its exit status and output. Seconds instead of the
    interpreter and import start-up of a subprocess; keep one subprocess test per tool for the real launch.
    An uncaught exception is printed to stderr with exit status 1, as the interpreter would."""
    def run(script: str, *args, cwd: str = REPO, env: dict = None) -> ToolRun:
        path = osp.join(REPO, 'tools', script)
        for k, v in (env or {}).items():
            monkeypatch.setenv(k, str(v))
        capfd.readouterr()  # what the test printed before is not the tool's output
        monkeypatch.setattr(sys, 'argv', [path, *map(str, args)])
        old = os.getcwd()
        os.chdir(cwd)
        code = 0
        try:
            runpy.run_path(path, run_name='__main__')
        except SystemExit as e:
            if isinstance(e.code, int) or e.code is None:
                code = e.code or 0
            else:
                print(e.code, file=sys.stderr)
                code = 1
        except Exception:  # noqa: BLE001  (what the interpreter does with an uncaught exception)
            traceback.print_exc()
            code = 1
        finally:
            os.chdir(old)
            sys.stdout.flush()
            sys.stderr.flush()
        out, err = capfd.readouterr()
        return ToolRun(code, out, err)
    return run


@pytest.fixture(autouse=True)
def _seed_and_threads():
    torch.manual_seed(0)
    yield


@pytest.fixture(scope='session')
def demo_data(tmp_path_factory):
    """A small procedural dataset shared by the tests that train."""
    from mmdg.datasets.synthetic import write_cityscapes_layout
    root = str(tmp_path_factory.mktemp('demo_data'))
    write_cityscapes_layout(root, splits=dict(train=48, val=12), workers=2, progress=False)
    return root


def tiny_vit(kind: str = 'dinov2', **kw):
    """Randomly initialised, shrunk versions of the timm architectures mmdg supports."""
    import timm
    names = {
        'dinov2': 'vit_small_patch14_dinov2',
        'dinov2-reg4': 'vit_small_patch14_reg4_dinov2',
        'dinov2-g': 'vit_giant_patch14_dinov2',
        'eva02-s': 'eva02_small_patch14_224',
        'eva02-b': 'eva02_base_patch14_224',
        'dinov3': 'vit_small_patch16_dinov3',  # MLP, 4 registers, RoPE, layer scale
        'dinov3-qkvb': 'vit_small_patch16_dinov3_qkvb',
        'dinov3-7b': 'vit_7b_patch16_dinov3',  # SwiGLU
    }
    args = dict(pretrained=False, num_classes=0, img_size=56, embed_dim=64, depth=4, num_heads=2,
                dynamic_img_size=True)
    if kind == 'dinov2':
        args['init_values'] = 1.0
    if kind.startswith('dinov3'):  # patch 16: inputs of any size are padded to a multiple of it
        args.update(img_size=64, dynamic_img_pad=True, init_values=1.0)
    args.update(kw)
    return timm.create_model(names[kind], **args)


os.environ.setdefault('OMP_NUM_THREADS', '2')
