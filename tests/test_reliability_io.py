"""Files mmdg writes and reads, errors and Ctrl-C through the real tools (docs/reliability.md, "Files,
errors and interruptions")."""
import os
import os.path as osp
import signal
import subprocess
import sys
import time

import pytest
import torch
from mmengine.config import Config

from conftest import REPO, invoke_tool

ENV = {**os.environ, 'OMP_NUM_THREADS': '2'}


def _run(*args, umask=None):
    res = invoke_tool(*args, umask=umask)
    return res.returncode, res.stdout + res.stderr


def _one_line_error(code, out, *expected):
    assert code == 1, out[-3000:]
    assert 'Traceback' not in out, out[-3000:]
    for text in expected:
        assert text in out, out[-3000:]


def _dead_pid():
    pid = 4_000_000
    while True:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return pid
        except PermissionError:
            pass
        pid -= 1


# ------------------------------------------------------------------------------------ permissions
@pytest.mark.parametrize('umask,mode', [(0o022, 0o644), (0o002, 0o664), (0o077, 0o600)])
def test_written_files_follow_the_umask(tmp_path, umask, mode):
    from mmdg.utils.checkpoint import AtomicLocalBackend, atomic_save
    old = os.umask(umask)
    try:
        atomic_save(dict(a=torch.zeros(1)), str(tmp_path / 'ckpt.pth'))
        AtomicLocalBackend().put_text('x', str(tmp_path / 'last_checkpoint'))
    finally:
        os.umask(old)
    for name in ('ckpt.pth', 'last_checkpoint'):
        assert (tmp_path / name).stat().st_mode & 0o777 == mode, name


def test_a_replaced_file_keeps_its_mode_and_stale_temporaries_go(tmp_path):
    from mmdg.utils.checkpoint import atomic_save
    path = tmp_path / 'shared.pth'
    path.write_bytes(b'old')
    path.chmod(0o640)
    stale = tmp_path / f'.mmdg-tmp-{_dead_pid()}-abc.pth'  # a writer killed mid-save
    stale.write_bytes(b'half')
    running = tmp_path / f'.mmdg-tmp-{os.getpid()}-xyz.png'  # a write in flight (this process, another thread)
    running.write_bytes(b'partial')
    atomic_save(dict(a=torch.zeros(1)), str(path))
    assert path.stat().st_mode & 0o777 == 0o640
    assert not stale.exists() and running.exists()  # one rule for checkpoints and label converters alike


# ------------------------------------------------------------------------------------- converters
@pytest.fixture(scope='module')
def dinov2_s(tmp_path_factory):
    import timm
    from safetensors.torch import save_file
    ref = timm.create_model('vit_small_patch14_dinov2', pretrained=False, num_classes=0, img_size=224)
    path = tmp_path_factory.mktemp('st') / 'model.safetensors'  # timm's layout, as the Hub ships it
    save_file({k: v.contiguous() for k, v in ref.state_dict().items()}, str(path))
    return ref, path


@pytest.mark.tool
def test_vit_converter_reads_safetensors_and_writes_readable_files(tmp_path, dinov2_s):
    ref, src = dinov2_s
    dst = tmp_path / 'out' / 'dinov2_s.pth'
    code, out = _run('tools/convert/vit.py', src, dst, '--arch', 'dinov2-s', '--img-size', '224', '--patch-size',
                     '14', umask=0o022)
    assert code == 0, out[-3000:]
    assert dst.stat().st_mode & 0o777 == 0o644
    from mmdg.utils.checkpoint import safe_torch_load
    state = safe_torch_load(str(dst))['state_dict']
    for k, v in ref.state_dict().items():
        torch.testing.assert_close(state[k], v, msg=k)


@pytest.mark.tool
def test_corrupt_weight_files_are_named_as_corrupt(tmp_path, dinov2_s):
    _, good = dinov2_s
    cut = tmp_path / 'cut.safetensors'
    cut.write_bytes(good.read_bytes()[:100_000])
    code, out = _run('tools/convert/vit.py', cut, tmp_path / 'a.pth', '--arch', 'dinov2-s')
    _one_line_error(code, out, 'CheckpointError', str(cut), 'corrupt or truncated safetensors file')
    junk = tmp_path / 'junk.pth'  # e.g. an HTML error page saved under the checkpoint's name
    junk.write_bytes(b'<html><body>404 Not Found</body></html>\n' * 10)
    code, out = _run('tools/convert/vit.py', junk, tmp_path / 'b.pth', '--arch', 'dinov2-s')
    _one_line_error(code, out, 'CheckpointError', str(junk), 'corrupt or not a PyTorch checkpoint')
    assert 'pickle references' not in out
    assert not (tmp_path / 'a.pth').exists() and not (tmp_path / 'b.pth').exists()


def test_label_converter_names_a_corrupt_image_and_cleans_up_a_killed_run(tmp_path):
    from mmdg.datasets.synthetic_layouts import write_raw_layout
    root = write_raw_layout('gta5', str(tmp_path / 'gta5'), n=3)
    tool = 'tools/dataset_converters/convert_labels.py'
    image = os.path.join(root, 'images', '00002.png')
    data = open(image, 'rb').read()
    open(image, 'wb').write(data[:40])  # a download cut short
    code, out = _run(tool, 'gta5', root, '--nproc', '1', '--no-progress')
    assert code == 1 and 'Traceback' not in out, out[-3000:]
    assert image in out and 'cannot be read as an image' in out
    open(image, 'wb').write(data)
    labels = os.path.join(root, 'labels')
    stale = os.path.join(labels, f'.mmdg-tmp-{_dead_pid()}-00001_labelTrainIds.png')  # left by a killed run
    open(stale, 'wb').write(b'half')
    code, out = _run(tool, 'gta5', root, '--nproc', '1', '--no-progress')
    assert code == 0, out[-3000:]
    assert sorted(f for f in os.listdir(labels) if f.startswith('.')) == []


# ----------------------------------------------------------------------------------------- errors
def test_cfg_options_of_the_wrong_type_name_the_key(tmp_path):
    cfg = os.path.join(REPO, 'configs', 'demo', 'lora.py')
    code, out = _run('tools/train.py', cfg, '--work-dir', tmp_path / 'w', '--cfg-options', 'train_cfg.max_iters=1k')
    _one_line_error(code, out, "train_cfg.max_iters='1k' is a string, but the config has a number there")
    assert not (tmp_path / 'w').exists()


@pytest.mark.parametrize('option,message', [
    ('train_dataloader.batch_size=0', 'train_dataloader.batch_size=0: needs a whole number >= 1'),
    ('val_dataloader.num_workers=-1', 'val_dataloader.num_workers=-1: needs a whole number >= 0'),
    ('train_cfg.max_iters=0', 'train_cfg.max_iters=0: needs a whole number >= 1'),
    ('train_cfg.val_interval=2.5', 'train_cfg.val_interval=2.5: needs a whole number >= 1'),
    ('train_dataloader.num_workers=two', "train_dataloader.num_workers='two' is a string"),
])
def test_odd_config_values_name_the_key(option, message):
    """What the tools' config loader (load_tool_config, behind train.py and test.py) says before anything
    is built; torch would refuse a batch of 0 without naming the key, and 0 iterations train nothing."""
    from mmengine.config import DictAction
    from mmdg.utils.tool_config import load_tool_config
    key, value = option.split('=')
    options = {key: DictAction._parse_iterable(value)}
    with pytest.raises(SystemExit, match=message.replace('[', r'\[').replace('.', r'\.')):
        load_tool_config(os.path.join(REPO, 'configs', 'demo', 'lora.py'), options)


def test_a_config_with_a_syntax_error_is_one_line(tmp_path):
    cfg = tmp_path / 'broken.py'
    cfg.write_text("_base_ = ['x.py'\nmodel = dict(\n")
    code, out = _run('tools/train.py', cfg)
    _one_line_error(code, out, f'config {cfg} cannot be read')


def test_unexpected_errors_keep_their_traceback(monkeypatch):
    from mmdg.engine import NonFiniteLossError
    from mmdg.utils import tool_config
    from mmdg.utils.tool_config import input_errors_as_messages
    monkeypatch.delenv('MMDG_DEBUG', raising=False)
    monkeypatch.setitem(tool_config.RUN_STATE, 'in_loop', False)
    with pytest.raises(RuntimeError):  # never an input error
        with input_errors_as_messages():
            raise RuntimeError('CUDA error: an illegal memory access was encountered')
    with pytest.raises(SystemExit):  # reading input: a KeyError from the registry is a config typo
        with input_errors_as_messages():
            raise KeyError('TimmVit is not in the mmdg::model registry')
    monkeypatch.setitem(tool_config.RUN_STATE, 'in_loop', True)
    for exc in (TypeError('unsupported operand'), IndexError('index 40 is out of bounds'), AssertionError()):
        with pytest.raises(type(exc)):  # inside the loop a plain error is a bug: its traceback is kept
            with input_errors_as_messages():
                raise exc
    with pytest.raises(SystemExit):  # mmdg's own errors name what to fix at every stage
        with input_errors_as_messages():
            raise NonFiniteLossError('the loss is nan at iteration 3')


# ---------------------------------------------------------------------------------------- Ctrl-C
@pytest.mark.tool
def test_ctrl_c_stops_with_one_line_and_a_loadable_checkpoint(tmp_path, demo_data):
    from mmdg.apis.demo import demo_config
    from mmdg.utils.checkpoint import safe_torch_load
    work = tmp_path / 'work'
    cfg = demo_config('lora', data_root=demo_data, work_dir=str(work), max_iters=500, num_workers=0)
    cfg.train_dataloader.batch_size = 1
    cfg.default_hooks.checkpoint.interval = 1
    cfg.val_dataloader = cfg.val_cfg = cfg.val_evaluator = None
    cfg.train_cfg.val_interval = 10_000
    cfg.dump(str(tmp_path / 'cfg.py'))
    # The output goes to a file, not a pipe: nobody reads a pipe while the test polls, and a full pipe
    # would block the run before it reaches a checkpoint.
    log_path = tmp_path / 'train.out'
    with open(log_path, 'w') as log_file:
        # SIGINT at its default in the child: a suite started in the background (`make test &`) runs with
        # SIGINT ignored, which a child inherits, and Python then installs no KeyboardInterrupt handler
        proc = subprocess.Popen([sys.executable, 'tools/train.py', str(tmp_path / 'cfg.py')], cwd=REPO, env=ENV,
                                stdout=log_file, stderr=subprocess.STDOUT, text=True,
                                preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    def last_saved_iter():  # max_keep_ckpts=1 deletes iter_2.pth once iter_3.pth lands: any iter >= 2 will do
        return max((int(p.stem.split('_')[1]) for p in work.glob('iter_*.pth')), default=0)
    deadline = time.time() + 300
    while last_saved_iter() < 2 and proc.poll() is None and time.time() < deadline:
        time.sleep(0.2)
    assert last_saved_iter() >= 2, log_path.read_text()[-3000:]
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout=120)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise AssertionError('no exit 120 s after Ctrl-C:\n' + log_path.read_text()[-3000:]) from None
    out = log_path.read_text()
    assert proc.returncode == 130, out[-3000:]
    assert 'Traceback' not in out, out[-3000:]
    line = next(t for t in out.splitlines() if t.startswith('interrupted (Ctrl-C) at iteration'))
    last = line.split('last checkpoint: ')[1].split(';')[0]
    assert '--resume' in line and os.path.isfile(last)
    ckpt = safe_torch_load(last)
    assert ckpt['meta']['iter'] >= 2 and ckpt['state_dict']


# ------------------------------------------------------------------------------------------ demos
@pytest.mark.parametrize('config', ['demo/lora.py', 'demo/full.py', 'demo_det/faster-rcnn_vit-tiny.py'])
def test_demos_use_the_checked_loaders(config):
    cfg = Config.fromfile(os.path.join(REPO, 'configs', config))
    pipelines = [cfg.train_dataloader.dataset.pipeline] + [d.pipeline for d in cfg.target_datasets.values()]
    for pipeline in pipelines:
        types = [t['type'] for t in pipeline]
        assert 'LoadImageChecked' in types and 'LoadImageFromFile' not in types and 'mmdet.LoadImageFromFile' not in types
        if 'demo/' in config:
            assert 'LoadAnnotationsChecked' in types


def test_atomic_open_leaves_the_old_file_when_the_writer_fails(tmp_path):
    """Tables, JSON and lists the tools write go through atomic_open: an error (a full disk) midway keeps the
    previous file whole and leaves no temporary behind."""
    import json

    from mmdg.utils.atomic import atomic_open
    path = tmp_path / 'results.json'
    with atomic_open(str(path)) as f:
        json.dump(dict(a=1), f)
    with pytest.raises(OSError):
        with atomic_open(str(path)) as f:
            f.write('{"a": ')
            raise OSError(28, 'No space left on device')
    assert json.loads(path.read_text()) == dict(a=1) and [p.name for p in tmp_path.iterdir()] == ['results.json']
    with pytest.raises(ValueError, match='whole files'):
        with atomic_open(str(path), 'a'):
            pass


@pytest.mark.tool
def test_missing_demo_data_names_the_command_that_writes_it(tmp_path):
    """A demo config run before its data exists says which command generates it (``--det`` for the detection
    demo), and that command writes data the config then finds."""
    for config, command in (('configs/demo/sora.py', 'python tools/generate_demo_data.py)'),
                            ('configs/demo_det/faster-rcnn_vit-tiny.py', 'python tools/generate_demo_data.py --det')):
        res = invoke_tool('train.py', osp.join(REPO, config), '--work-dir', tmp_path / 'w', cwd=str(tmp_path))
        code, out = res.returncode, res.stdout + res.stderr
        assert code == 1 and f'(the demo data is generated by: {command}' in out, out[-2000:]
    code, out = _run('tools/generate_demo_data.py', '--det', '--out', tmp_path / 'data/demo_det', '--train', 1, '--val',
                     1, '--domains', 'source', 'fog')
    assert code == 0 and 'domain folders' in out
    from mmdg.datasets import DiverseWeatherDataset
    assert len(DiverseWeatherDataset(data_root=str(tmp_path / 'data/demo_det'), domain='fog', split='test',
                                     pipeline=[])) == 1


def test_two_training_runs_cannot_share_a_work_dir(tmp_path):
    """A second tools/train.py into a work dir a live run holds stops in one line before it builds anything; a
    killed run's lock is taken over; the lock goes when the run ends."""
    import json
    import socket

    from mmdg.utils.atomic import LOCK_NAME, WorkDirBusyError, work_dir_lock
    work = tmp_path / 'work'
    work.mkdir()
    holder = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])
    try:
        (work / LOCK_NAME).write_text(json.dumps(dict(pid=holder.pid, host=socket.gethostname())))
        code, out = _run('tools/train.py', 'configs/demo/sora.py', '--work-dir', work)
        assert code == 1 and f'is in use by another training run (pid {holder.pid}' in out, out[-2000:]
        assert sorted(p.name for p in work.iterdir()) == [LOCK_NAME]  # nothing written
        with pytest.raises(WorkDirBusyError):
            with work_dir_lock(str(work)):
                pass
    finally:
        holder.kill()
        holder.wait()
    # the holder is gone: its lock is stale and taken over, and released at the end
    with work_dir_lock(str(work)):
        assert json.loads((work / LOCK_NAME).read_text())['pid'] == os.getpid()
    assert not (work / LOCK_NAME).exists()


def test_a_full_disk_while_saving_is_one_line(monkeypatch, capsys):
    """ENOSPC while a checkpoint is written (an OSError without a file name, raised inside the loop) ended in a
    traceback; now one line saying what survived."""
    from mmdg.utils.tool_config import RUN_STATE, input_errors_as_messages
    monkeypatch.delenv('MMDG_DEBUG', raising=False)
    monkeypatch.setitem(RUN_STATE, 'in_loop', True)
    with pytest.raises(SystemExit) as exc:
        with input_errors_as_messages():
            raise OSError(28, 'No space left on device')
    err = capsys.readouterr().err
    assert exc.value.code == 1 and 'No space left on device' in err and 'the last complete ones are intact' in err
    assert 'Traceback' not in err
