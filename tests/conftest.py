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


def _forget_named_instances() -> None:
    """Drop mmengine's named loggers, visualizers and message hubs of earlier runs in this process. A runner
    names them after its config file and the second it starts (``cfg_20261207_101500``): two runs of a
    ``cfg.py`` within one second would otherwise share a visualizer, and the second would write its scalars
    into the first one's work dir (in separate processes, as users run tools, names never meet). The default
    scope is kept."""
    from mmengine.registry import DefaultScope
    from mmengine.utils import ManagerMixin
    todo = list(ManagerMixin.__subclasses__())
    while todo:
        cls = todo.pop()
        todo.extend(cls.__subclasses__())
        if not issubclass(cls, DefaultScope):
            cls._instance_dict.clear()


def invoke_tool(script: str, *args, cwd: str = REPO, env: dict = None, umask: int = None) -> ToolRun:
    """``invoke_tool('train.py', CONFIG, '--work-dir', d)`` (or ``'tools/train.py'``, or an absolute path) runs ``tools/train.py`` in this process, exactly as
    ``python tools/train.py ...`` runs it (the script executed as ``__main__`` with that ``sys.argv``, the
    working directory ``cwd``, ``env`` added to the environment), and returns its exit status and output
    (file descriptors 1 and 2 included, so C code and log handlers are caught too). Seconds instead of the
    interpreter and import start-up of a subprocess; keep one subprocess test per tool for the real launch.
    An uncaught exception is printed to stderr with exit status 1, as the interpreter does."""
    import io
    import tempfile
    _forget_named_instances()
    path = script if osp.isabs(script) else osp.join(REPO, script if script.startswith('tools/') else f'tools/{script}')
    saved_env = {k: os.environ.get(k) for k in (env or {})}
    os.environ.update({k: str(v) for k, v in (env or {}).items()})
    saved_argv, saved_cwd, saved_streams = sys.argv, os.getcwd(), (sys.stdout, sys.stderr)
    saved_umask = os.umask(umask) if umask is not None else None
    saved_torch = torch.is_grad_enabled(), torch.get_default_dtype(), torch.get_num_threads()
    sys.stdout.flush()
    sys.stderr.flush()
    saved_fds = os.dup(1), os.dup(2)
    files = tempfile.TemporaryFile(), tempfile.TemporaryFile()
    code = 0
    try:
        os.dup2(files[0].fileno(), 1)
        os.dup2(files[1].fileno(), 2)
        # on the descriptors themselves, never closed: a log handler the tool leaves behind keeps writing
        # to whatever fds 1 and 2 are later, instead of failing on a closed stream
        sys.stdout = io.TextIOWrapper(open(1, 'wb', closefd=False), line_buffering=True)
        sys.stderr = io.TextIOWrapper(open(2, 'wb', closefd=False), line_buffering=True)
        sys.argv = [path, *map(str, args)]
        os.chdir(cwd)
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
        sys.stdout.flush()
        sys.stderr.flush()
        sys.stdout, sys.stderr = saved_streams
        os.dup2(saved_fds[0], 1)
        os.dup2(saved_fds[1], 2)
        for fd in saved_fds:
            os.close(fd)
        os.chdir(saved_cwd)
        sys.argv = saved_argv
        if saved_umask is not None:
            os.umask(saved_umask)
        # process-wide torch settings a script may change for itself (a subprocess would take them along)
        torch.set_grad_enabled(saved_torch[0])
        torch.set_default_dtype(saved_torch[1])
        torch.set_num_threads(saved_torch[2])
        for k, v in saved_env.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    texts = []
    for f in files:
        f.seek(0)
        texts.append(f.read().decode(errors='replace'))
        f.close()
    return ToolRun(code, *texts)


#: Fixtures that run a tool, train a model or generate datasets: a test that uses one (directly or through
#: another fixture) is in the `tool` tier (pytest.ini), which `make test-fast` leaves out.
TOOL_FIXTURES = frozenset({'run_tool', 'demo_data', 'demo_model', 'dg_roots', 'det_roots'})


def pytest_collection_modifyitems(config, items):
    for item in items:
        if TOOL_FIXTURES & set(getattr(item, 'fixturenames', ())):
            item.add_marker(pytest.mark.tool)


@pytest.fixture
def run_tool():
    """:func:`invoke_tool`: a tool run in the test process."""
    return invoke_tool


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


#: Diverse-Weather domain folders in several spellings of other releases, with the style generated for each.
DWD_FOLDERS = {'Daytime-Clear': 'source', 'night_sunny': 'night', 'Dusk-Rainy': 'rain', 'NightRainy': 'night',
               'daytime-foggy': 'fog'}


@pytest.fixture(scope='session')
def dg_roots(tmp_path_factory):
    """Every dataset in its raw public layout (2 tiny samples per split), labels converted."""
    from mmdg.datasets.converters import conversion_pairs, convert
    from mmdg.datasets.synthetic_layouts import write_raw_layout
    base = tmp_path_factory.mktemp('dg_data')
    roots = {}
    for name, splits in dict(gta5=['train'], synthia=['train'], urbansyn=['train'], cityscapes=['train', 'val'],
                             bdd100k=['val'], mapillary=['val'], acdc=['val', 'test']).items():
        root = str(base / name)
        for split in splits:
            write_raw_layout(name, root, n=2, split=split, size=(64, 96), conditions=('fog', 'night', 'rain', 'snow'))
        if name in ('gta5', 'synthia', 'urbansyn', 'cityscapes', 'mapillary'):
            images, pairs = conversion_pairs(name, root)
            convert(pairs, name, images, nproc=1, progress=False)
        if name == 'mapillary':  # the recipes score Mapillary on its half-resolution validation copy
            from mmdg.datasets.converters import make_mapillary_half_val
            make_mapillary_half_val(root, nproc=1, progress=False)
        roots[name] = root
    # the data-efficiency configs read an image list of Cityscapes train (here: all of them)
    from mmdg.datasets.converters import write_subset_list
    write_subset_list(roots['cityscapes'], 1.0, osp.join(roots['cityscapes'], 'splits', 'cityscapes_train_1of16.txt'))
    return roots


@pytest.fixture(scope='session')
def det_roots(tmp_path_factory):
    from mmdg.datasets.voc_writer import write_synthetic_voc
    base = tmp_path_factory.mktemp('det_data')
    write_synthetic_voc(str(base / 'dwd'), DWD_FOLDERS, dict(train=2, test=1), size=(64, 128))
    write_synthetic_voc(str(base / 'cityscapes_det'), {'cityscapes': 'source', 'foggy_cityscapes': 'fog'},
                        dict(train=2, val=1), size=(64, 128), label_set='cityscapes8')
    return dict(DiverseWeatherDataset=str(base / 'dwd'), CityscapesDetDataset=str(base / 'cityscapes_det'))


@pytest.fixture(scope='session')
def demo_model(tmp_path_factory):
    """The demo config (two images of one style, no workers) and an untrained full checkpoint with its classes:
    what the tools need, without a training run."""
    from mmengine.registry import init_default_scope
    from mmdg.datasets.synthetic import write_cityscapes_layout
    tmp = tmp_path_factory.mktemp('test_tool')
    root = str(tmp / 'data')
    write_cityscapes_layout(root, splits=dict(val=2), workers=1, progress=False)
    from mmdg.apis.demo import demo_config
    cfg = demo_config('full', data_root=root, work_dir=str(tmp / 'work'), num_workers=0)
    cfg.target_datasets = dict(fog=cfg.target_datasets.fog)
    cfg.test_dataloader.dataset.domains = cfg.target_datasets
    init_default_scope('mmdg')
    from mmdg.registry import DATASETS, MODELS
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    meta = dict(DATASETS.get('CityscapesDataset').METAINFO)
    ckpt = str(tmp / 'model.pth')
    torch.save(dict(state_dict=model.state_dict(), meta=dict(dataset_meta=meta)), ckpt)
    path = str(tmp / 'cfg.py')
    cfg.dump(path)
    return path, ckpt, tmp


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
