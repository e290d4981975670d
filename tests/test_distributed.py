"""Training past one process on PyTorch's own engine: tools/dist_train.sh (torchrun) with two CPU processes
(gloo, asked for with --cpu-ddp) trains an adapted model, both ranks end with identical weights; then tools/dist_test.sh scores the
checkpoint with two processes. Every method leaves no trainable parameter without a gradient (DDP's
unused-parameter error), for segmentors and detectors."""
import os
import socket
import subprocess
import sys

import pytest
import torch

from conftest import REPO
from mmdg.apis.demo import METHODS, demo_config

pytestmark = [pytest.mark.slow, pytest.mark.cli]

RANK_DUMP_HOOK = '''
import torch
import torch.distributed as dist
from mmengine.hooks import Hook
from mmdg.registry import HOOKS


@HOOKS.register_module()
class RankDumpHook(Hook):
    """Test-only: each rank writes its weights and what wraps its model."""

    def after_run(self, runner):
        model = runner.model.module if hasattr(runner.model, 'module') else runner.model
        torch.save(dict(wrapper=type(runner.model).__name__, world=dist.get_world_size(),
                        state={k: v.detach().clone() for k, v in model.named_parameters()}),
                   f'{runner.work_dir}/rank{dist.get_rank()}.pth')
'''


def _free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return str(s.getsockname()[1])


def test_two_gloo_processes_hold_identical_weights(tmp_path, demo_data):
    (tmp_path / 'rank_dump_hook.py').write_text(RANK_DUMP_HOOK)
    cfg = demo_config('sora', data_root=demo_data, max_iters=3, num_workers=0)
    cfg.train_dataloader.batch_size = 2
    cfg.train_cfg.val_begin = 4
    cfg.custom_imports.imports = list(cfg.custom_imports.imports) + ['rank_dump_hook']
    cfg.custom_hooks = list(cfg.custom_hooks) + [dict(type='RankDumpHook')]
    cfg.dump(str(tmp_path / 'cfg.py'))
    env = {**{k: v for k, v in os.environ.items() if k != 'MMDG_CPU_DDP'}, 'PYTHON': sys.executable, 'PORT': _free_port(), 'OMP_NUM_THREADS': '1',
           'PYTHONPATH': os.pathsep.join([str(tmp_path), REPO, os.environ.get('PYTHONPATH', '')]),
           'CUDA_VISIBLE_DEVICES': ''}
    work = tmp_path / 'work'
    res = subprocess.run(['bash', 'tools/dist_train.sh', str(tmp_path / 'cfg.py'), '2', '--cpu-ddp', '--work-dir', str(work)],
                         cwd=REPO, env=env, capture_output=True, text=True, timeout=900)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-4000:]
    r0, r1 = (torch.load(work / f'rank{r}.pth', weights_only=False) for r in (0, 1))
    assert r0['world'] == r1['world'] == 2 and r0['wrapper'] == 'MMDistributedDataParallel'
    assert any('lora_' in k for k in r0['state'])  # SoRA's adapter parameters are among the compared weights
    # parameters, not buffers: BatchNorm running statistics are per rank unless the head uses SyncBN
    for k, v in r0['state'].items():
        torch.testing.assert_close(r1['state'][k], v, rtol=0, atol=0, msg=lambda m: f'rank 1 differs at {k}: {m}')
    assert (work / 'iter_3.pth').is_file()

    res = subprocess.run(['bash', 'tools/dist_test.sh', str(tmp_path / 'cfg.py'), str(work / 'iter_3.pth'), '2',
                          '--cpu-ddp', '--work-dir', str(tmp_path / 'test')], cwd=REPO, env={**env, 'PORT': _free_port()},
                         capture_output=True, text=True, timeout=900)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-4000:]
    assert 'mean/mIoU' in res.stdout + res.stderr


def _det_config(method, data_root):
    from mmdg.apis.demo_det import demo_det_config
    return demo_det_config(method, data_root=data_root, max_iters=1, num_workers=0)


@pytest.mark.parametrize('task', ['seg', 'det'])
def test_every_trainable_parameter_gets_a_gradient(task, tmp_path, demo_data):
    """What DDP (find_unused_parameters=False) needs: after one backward pass every parameter that
    requires a gradient has one, for every method."""
    from mmengine.registry import init_default_scope
    from mmengine.runner import Runner
    init_default_scope('mmdg')
    from mmdg.registry import MODELS
    if task == 'det':
        from mmdg.datasets.voc_writer import write_synthetic_voc
        write_synthetic_voc(str(tmp_path / 'dwd'), splits=dict(train=2, test=1), size=(64, 128))
    for method in METHODS:
        cfg = demo_config(method, data_root=demo_data) if task == 'seg' else _det_config(method, str(tmp_path / 'dwd'))
        cfg.train_dataloader.update(batch_size=2, num_workers=0, persistent_workers=False)
        model = MODELS.build(cfg.model)
        model.init_weights()
        from mmdg.models.utils import attach_aux_losses
        attach_aux_losses(model)
        loader = Runner.build_dataloader(cfg.train_dataloader)
        data = model.data_preprocessor(next(iter(loader)), training=True)
        losses = model(**data, mode='loss')
        total = sum(v.sum() if torch.is_tensor(v) else sum(x.sum() for x in v) for k, v in losses.items() if 'loss' in k)
        total.backward()
        missing = [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None]
        assert not missing, f'{task}/{method}: trainable parameters without a gradient (DDP would fail): {missing[:5]}'
        assert any(p.requires_grad for p in model.parameters())
