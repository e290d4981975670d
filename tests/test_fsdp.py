"""Sharded training (FSDP2Strategy on mmengine's FlexibleRunner): the DINOv3-7B SoRA sharded config at toy
size (a 4-block DINOv3-7B-architecture ViT: SwiGLU, RoPE, register tokens) trains on two CPU processes
(gloo), writes sharded checkpoints, resumes from one to the uninterrupted run's next loss, and merges into
plain weights; the tools read sharded checkpoints whole."""
import json
import os
import os.path as osp
import shutil
import socket
import subprocess
import sys

import pytest
import torch
from mmengine.config import Config

from conftest import REPO
from mmdg.testing import toy_recipe

SHARDED_SORA = osp.join(REPO, 'configs', 'dg_seg', 'sora',
                        'sora_dinov3-7b_mask2former_4xb1-40k_gta5-to-cbm-512x512_fsdp.py')


def _free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return str(s.getsockname()[1])


def _train(cfg_path, work, *extra):
    env = {**{k: v for k, v in os.environ.items() if k != 'MMDG_CPU_DDP'}, 'PYTHON': sys.executable,
           'PORT': _free_port(), 'OMP_NUM_THREADS': '1', 'CUDA_VISIBLE_DEVICES': ''}
    res = subprocess.run(['bash', 'tools/dist_train.sh', cfg_path, '2', '--cpu-ddp', '--work-dir', str(work), *extra],
                         cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-4000:]
    return res


def _losses(work):
    """iteration -> loss, from the run's scalars log (mmengine's vis_data/scalars.json)."""
    losses = {}
    for root, _, files in os.walk(work):
        if 'scalars.json' in files:
            for line in open(osp.join(root, 'scalars.json')):
                row = json.loads(line)
                if 'loss' in row:
                    losses[row['step']] = row['loss']
    return losses


@pytest.mark.slow
@pytest.mark.cli
def test_two_processes_shard_train_resume_and_merge(tmp_path, dg_roots, run_tool):
    cfg = toy_recipe(Config.fromfile(SHARDED_SORA), dg_roots, iters=4)
    assert cfg.runner_type == 'FlexibleRunner' and cfg.strategy.type == 'FSDP2Strategy'
    assert cfg.model.backbone.arch == 'dinov3-7b' and cfg.model.backbone.grad_checkpointing
    cfg.train_dataloader.batch_size = 1
    cfg.default_hooks.checkpoint.interval = 2
    cfg.train_cfg.val_interval = 4
    cfg_path = str(tmp_path / 'cfg.py')
    cfg.dump(cfg_path)

    _train(cfg_path, tmp_path / 'a')
    losses = _losses(tmp_path / 'a')
    assert sorted(losses) == [1, 2, 3, 4] and losses[4] < losses[1], losses
    for it in (2, 4):  # a folder with one shard file per process and the small state beside them
        ckpt = tmp_path / 'a' / f'iter_{it}.pth'
        assert sorted(p.name for p in ckpt.iterdir()) == ['.metadata', '__0_0.distcp', '__1_0.distcp',
                                                          'extra_state.pth']
    assert not [p for p in (tmp_path / 'a').iterdir() if p.name.startswith('.mmdg-tmp-')]

    # read whole in one process: every entry of the unsharded model, adapters float32, frozen weights bf16
    from mmengine.registry import init_default_scope
    from mmdg.engine.fsdp import read_sharded_checkpoint
    init_default_scope('mmdg')
    from mmdg.registry import MODELS
    whole = read_sharded_checkpoint(str(tmp_path / 'a' / 'iter_4.pth'))
    plain = MODELS.build(cfg.model)
    assert set(whole['state_dict']) == set(plain.state_dict())
    assert whole['state_dict']['backbone.vit.blocks.1.attn.qkv.lora_A'].dtype == torch.float32  # trains
    assert whole['state_dict']['backbone.vit.blocks.0.attn.qkv.weight'].dtype == torch.bfloat16
    assert whole['meta']['iter'] == 4

    # resume from iteration 2 in another work dir: iteration 3's loss is the uninterrupted run's
    shutil.copytree(tmp_path / 'a' / 'iter_2.pth', tmp_path / 'b' / 'iter_2.pth')
    _train(cfg_path, tmp_path / 'b', '--resume')
    resumed = _losses(tmp_path / 'b')
    assert sorted(resumed) == [3, 4]
    for it in (3, 4):  # 3: the weights; 4: the optimizer state and the random state as well
        assert resumed[it] == pytest.approx(losses[it], rel=1e-6, abs=1e-6), (it, resumed, losses)

    out = tmp_path / 'merged.pth'
    r = run_tool('merge_adapters.py', cfg_path, tmp_path / 'a' / 'iter_4.pth', out)
    assert r.returncode == 0, r.stderr[-3000:]
    merged = torch.load(out, weights_only=True)['state_dict']
    from mmdg.apis.merge import plain_config
    assert set(merged) == set(MODELS.build(plain_config(cfg).model).state_dict())  # no adapter entry left


def _sharded_folder(path, state_dict, meta):
    """A sharded checkpoint as FSDP2Strategy lays it out, written by one process (DCP needs no process group)."""
    import torch.distributed.checkpoint as dcp
    from mmdg.engine.fsdp import EXTRA_FILE
    from mmdg.utils.checkpoint import atomic_save
    os.makedirs(path)
    atomic_save(dict(meta=meta), osp.join(path, EXTRA_FILE))
    dcp.save(dict(state_dict=state_dict), checkpoint_id=str(path))


def test_a_sharded_folder_reads_whole_resumes_and_an_incomplete_one_is_refused(tmp_path):
    from mmdg.utils.checkpoint import (CheckpointError, checkpoint_exists, find_resumable_checkpoint,
                                       safe_torch_load)
    state = {'backbone.w': torch.randn(4, 3), 'head.b': torch.randn(2).bfloat16()}
    _sharded_folder(tmp_path / 'iter_2.pth', state, dict(iter=2))
    _sharded_folder(tmp_path / 'iter_4.pth', state, dict(iter=4))
    ckpt = safe_torch_load(str(tmp_path / 'iter_4.pth'))  # what every tool reads
    assert ckpt['meta']['iter'] == 4 and set(ckpt['state_dict']) == set(state)
    for k, v in state.items():
        assert ckpt['state_dict'][k].dtype == v.dtype and torch.equal(ckpt['state_dict'][k], v)
    assert checkpoint_exists(str(tmp_path / 'iter_4.pth'))
    assert find_resumable_checkpoint(str(tmp_path)) == str(tmp_path / 'iter_4.pth')
    os.remove(tmp_path / 'iter_4.pth' / '.metadata')  # a run killed while saving: the metadata comes last
    assert find_resumable_checkpoint(str(tmp_path)) == str(tmp_path / 'iter_2.pth')
    with pytest.raises(CheckpointError, match=r'not a complete sharded checkpoint.*\.metadata'):
        safe_torch_load(str(tmp_path / 'iter_4.pth'))


def test_a_dead_writers_temporary_folder_is_removed(tmp_path):
    from mmdg.utils.atomic import TMP_PREFIX, remove_stale_temporaries
    dead = subprocess.run([sys.executable, '-c', 'import os; print(os.getpid())'], capture_output=True, text=True)
    stale = tmp_path / f'{TMP_PREFIX}{int(dead.stdout)}-iter_8.pth'
    (stale / 'sub').mkdir(parents=True)
    live = tmp_path / f'{TMP_PREFIX}{os.getpid()}-iter_9.pth'
    live.mkdir()
    assert remove_stale_temporaries(str(tmp_path)) == [stale.name]
    assert not stale.exists() and live.exists()


def test_sharded_configs_run_unsharded_in_one_process_and_refuse_ema(tmp_path, capsys):
    from mmdg.utils.tool_config import ConfigValueError, check_config_values, load_tool_config
    cfg = load_tool_config(SHARDED_SORA, work_dir=str(tmp_path))
    assert 'strategy' not in cfg and 'runner_type' not in cfg  # mmengine's plain Runner, unsharded
    assert 'runs unsharded' in capsys.readouterr().err
    cfg = Config.fromfile(SHARDED_SORA)
    assert not any(h.type == 'EMAHook' for h in cfg.custom_hooks)
    check_config_values(cfg)
    cfg.custom_hooks.append(dict(type='EMAHook'))
    with pytest.raises(ConfigValueError, match='EMAHook.*FSDP2Strategy'):
        check_config_values(cfg)
