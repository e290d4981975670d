"""Sharded training (parameters, gradients and optimizer state split over the processes) with PyTorch's
FSDP2 (``torch.distributed.fsdp.fully_shard``), as an mmengine strategy of ``FlexibleRunner``.

Why not mmengine's own ``FSDPStrategy``: it wraps FSDP1 with ``device_id=LOCAL_RANK``, so it runs on CUDA
only, and its flat parameters rename the state dict. FSDP2 shards module by module with ``DTensor``
parameters, keeps the model's class and state-dict keys, runs on CPU (gloo) as on GPU (nccl), and is the
engine PyTorch develops. Checkpoints are written with ``torch.distributed.checkpoint`` (DCP): a folder
``iter_N.pth/`` with one shard file per process, readable by any number of processes later and by every
mmdg tool (:func:`read_sharded_checkpoint` puts the shards back together for merging and testing).

Precision layout (FSDP2's usual mixed precision): frozen weights are stored in ``frozen_dtype`` (bf16: half
the memory of the 7B's frozen weights); trainable parameters (adapters, or everything in full fine-tuning)
keep float32 master copies that AdamW updates; the backbone computes in ``param_dtype`` (bf16) from gathered
copies and hands float32 features to the head, which computes in float32; gradients are reduced in
``reduce_dtype`` (float32).
"""
import atexit
import datetime
import os
import os.path as osp
import shutil
import time
import warnings
from typing import Callable, Optional, Sequence

import mmengine
import torch
import torch.distributed as dist
from mmengine._strategy import DDPStrategy, SingleDeviceStrategy
from mmengine.dist import get_rank, is_main_process
from mmengine.model import BaseDataPreprocessor
from mmengine.registry import STRATEGIES
from torch import nn

from mmdg.utils.atomic import TMP_PREFIX
from mmdg.utils.checkpoint import atomic_save, safe_torch_load

# beside the shard files of a sharded checkpoint: what is no tensor (meta, message hub, schedulers), rank 0's
EXTRA_FILE = 'extra_state.pth'
DCP_METADATA = '.metadata'  # DCP writes it last, after every shard: its presence marks a complete checkpoint
SHARDED_ENTRIES = ('state_dict', 'optimizer')


def _close_process_group() -> None:
    """At exit: wait for every process (30 s at most), then close the process group. Left to the interpreter's
    teardown, or closed while another process still talks to it, a process aborts in a C++ destructor after the
    run has ended well ("terminate called without an active exception")."""
    if not (dist.is_available() and dist.is_initialized()):
        return
    try:
        if dist.get_backend() == 'gloo':
            dist.monitored_barrier(timeout=datetime.timedelta(seconds=30))
        else:
            dist.barrier()
    except Exception:  # noqa: BLE001  (a process that failed: close anyway, torchrun reports the failure)
        pass
    dist.destroy_process_group()


def _dtype(name):
    return None if name is None else getattr(torch, name) if isinstance(name, str) else name


def is_sharded_checkpoint(path: str) -> bool:
    """Whether ``path`` is a complete sharded (DCP) checkpoint folder written by :class:`FSDP2Strategy`."""
    return osp.isdir(path) and osp.isfile(osp.join(path, DCP_METADATA)) and osp.isfile(osp.join(path, EXTRA_FILE))


def read_sharded_checkpoint(path: str, entries: Sequence[str] = ('state_dict',)) -> dict:
    """A sharded checkpoint as one ordinary checkpoint dict (full tensors, in one process, no process group):
    ``meta`` and the other small entries plus the requested tensor ``entries``. What the tools (test, merge,
    inference) read; training resumes from the shards themselves."""
    import torch.distributed.checkpoint as dcp
    from torch.distributed.checkpoint.metadata import TensorStorageMetadata
    if not is_sharded_checkpoint(path):
        from mmdg.utils.checkpoint import CheckpointError
        raise CheckpointError(f'checkpoint folder {path} is not a complete sharded checkpoint (it needs '
                              f'{DCP_METADATA} and {EXTRA_FILE}; a run stopped while saving leaves neither)')
    ckpt = safe_torch_load(osp.join(path, EXTRA_FILE))
    metadata = dcp.FileSystemReader(path).read_metadata()
    template = {}
    for key, item in metadata.state_dict_metadata.items():
        entry, _, name = key.partition('.')  # DCP flattens {'state_dict': {name: t}} to 'state_dict.name'
        if entry in entries and isinstance(item, TensorStorageMetadata):
            template.setdefault(entry, {})[name] = torch.empty(item.size, dtype=item.properties.dtype)
    with warnings.catch_warnings():  # "no process group: assuming a single process", which it is
        warnings.simplefilter('ignore', UserWarning)
        dcp.load(template, checkpoint_id=path)
    ckpt.update(template)
    return ckpt


# In mmengine's own registry: FlexibleRunner builds its strategy before it sets the config's default scope
# (the configs' custom_imports import mmdg.engine, so every entry point finds it)
@STRATEGIES.register_module()
class FSDP2Strategy(DDPStrategy):
    """FSDP2 sharding for ``FlexibleRunner``: ``runner_type='FlexibleRunner'`` and
    ``strategy=dict(type='FSDP2Strategy')`` in a config, launched as any distributed run
    (``tools/dist_train.sh``).

    Args:
        shard_classes: class names of the modules sharded one by one (the transformer blocks: each block's
            weights are gathered just before it runs and freed after); the rest of the model is one more unit.
        low_precision_module: the submodule computed in ``param_dtype`` (the backbone, where nearly all weights
            and time are); its outputs return in float32 to the rest of the model, which computes in float32.
        param_dtype: compute dtype of ``low_precision_module`` (``None``: the parameters' own).
        reduce_dtype: dtype of the gradient reduction.
        frozen_dtype: storage dtype of the backbone's parameters that do not train (``None``: unchanged).
        reshard_after_forward: free a block's gathered weights after its forward (memory) rather than keep
            them for the backward pass (one all-gather less per block).
    """

    def __init__(self, *, shard_classes: Sequence[str] = ('Block', 'EvaBlock'), low_precision_module: str = 'backbone',
                 param_dtype: Optional[str] = 'bfloat16',
                 reduce_dtype: Optional[str] = 'float32', frozen_dtype: Optional[str] = 'bfloat16',
                 reshard_after_forward: bool = True, **kwargs):
        super().__init__(**kwargs)
        self.shard_classes = tuple(shard_classes)
        self.low_precision_module = low_precision_module
        self.param_dtype, self.reduce_dtype = _dtype(param_dtype), _dtype(reduce_dtype)
        self.frozen_dtype = _dtype(frozen_dtype)
        self.reshard_after_forward = reshard_after_forward

    @property
    def sharded(self) -> bool:
        """Whether the run has processes to shard over; one process (``tools/test.py`` of a sharded config,
        a debug run) computes unsharded, in float32, as :class:`SingleDeviceStrategy` would."""
        return dist.is_available() and dist.is_initialized()

    def _wrap_model(self, model: nn.Module) -> nn.Module:
        device = mmengine.device.get_device()
        model = model.to(device)
        for module in model.modules():
            if isinstance(module, BaseDataPreprocessor):
                module.to(device)
        if not self.sharded:
            self.logger.warning('FSDP2Strategy in a single process: nothing to shard, the model runs unsharded')
            return model
        from torch.distributed.device_mesh import init_device_mesh
        from torch.distributed.fsdp import MixedPrecisionPolicy, fully_shard
        blocks = [m for m in model.modules() if type(m).__name__ in self.shard_classes]
        if not blocks:
            raise ValueError(f'FSDP2Strategy: the model has no module of the classes {list(self.shard_classes)} '
                             '(shard_classes) to shard block by block')
        backbone = model.get_submodule(self.low_precision_module)
        if self.frozen_dtype is not None:
            for p in backbone.parameters():
                if not p.requires_grad and p.is_floating_point():
                    p.data = p.data.to(self.frozen_dtype)
        atexit.register(_close_process_group)
        mesh = init_device_mesh('cuda' if device.startswith('cuda') else 'cpu', (dist.get_world_size(),))
        shard = dict(mesh=mesh, reshard_after_forward=self.reshard_after_forward)
        # Inside the backbone the blocks take their inputs as they come: with activation checkpointing FSDP2
        # does not cast a recomputed forward's inputs (the RoPE tables given to every block would differ in
        # dtype between the forward and its recomputation). The backbone casts the image once.
        for block in blocks:
            fully_shard(block, mp_policy=MixedPrecisionPolicy(param_dtype=self.param_dtype,
                                                              reduce_dtype=self.reduce_dtype,
                                                              cast_forward_inputs=False), **shard)
        fully_shard(backbone, mp_policy=MixedPrecisionPolicy(param_dtype=self.param_dtype, reduce_dtype=self.reduce_dtype,
                                                             output_dtype=torch.float32), **shard)
        # the head (Mask2Former's deformable attention and losses mix in float32 tensors of their own) and
        # everything else: float32, one more unit
        fully_shard(model, mp_policy=MixedPrecisionPolicy(reduce_dtype=self.reduce_dtype), **shard)
        return model

    # -- state dicts: sharded (DTensor) while training; full tensors only where a full file is loaded
    def model_state_dict(self) -> dict:
        if not self.sharded:
            return SingleDeviceStrategy.model_state_dict(self)
        from torch.distributed.checkpoint.state_dict import get_model_state_dict
        return get_model_state_dict(self.model)

    def optim_state_dict(self) -> dict:
        if not self.sharded:
            return SingleDeviceStrategy.optim_state_dict(self)
        from torch.distributed.checkpoint.state_dict import get_optimizer_state_dict
        return get_optimizer_state_dict(self.model, self.optim_wrapper.optimizer)

    def load_model_state_dict(self, state_dict: dict, *, strict: bool = False,
                              revise_keys: list = [(r'^module.', '')]) -> None:  # noqa: B006 (mmengine's signature)
        if not self.sharded:
            return SingleDeviceStrategy.load_model_state_dict(self, state_dict, strict=strict, revise_keys=revise_keys)
        from torch.distributed.checkpoint.state_dict import StateDictOptions, set_model_state_dict
        from torch.distributed.tensor import DTensor
        full = not any(isinstance(v, DTensor) for v in state_dict.values())  # a whole file (load_from)
        set_model_state_dict(self.model, state_dict, options=StateDictOptions(full_state_dict=full, strict=strict))

    def load_optim_state_dict(self, state_dict: dict) -> None:
        if not self.sharded:
            return SingleDeviceStrategy.load_optim_state_dict(self, state_dict)
        from torch.distributed.checkpoint.state_dict import set_optimizer_state_dict
        set_optimizer_state_dict(self.model, self.optim_wrapper.optimizer, state_dict)

    # -- checkpoints: a DCP folder, written under a temporary name and renamed when every shard is in
    def save_checkpoint(self, filename: str, *, save_optimizer: bool = True, save_param_scheduler: bool = True,
                        extra_ckpt: Optional[dict] = None, callback: Optional[Callable] = None) -> None:
        if not self.sharded:
            return SingleDeviceStrategy.save_checkpoint(self, filename, save_optimizer=save_optimizer,
                                                        save_param_scheduler=save_param_scheduler,
                                                        extra_ckpt=extra_ckpt, callback=callback)
        import torch.distributed.checkpoint as dcp
        ckpt = {'state_dict': self.model_state_dict()}
        if save_optimizer and hasattr(self, 'optim_wrapper'):
            ckpt['optimizer'] = self.optim_state_dict()
        if save_param_scheduler and hasattr(self, 'param_schedulers'):
            ckpt['param_schedulers'] = self.scheduler_state_dict()
        extra_ckpt = dict(extra_ckpt or {})
        extra_ckpt.setdefault('meta', {}).update(seed=self.seed, time=time.strftime('%Y%m%d_%H%M%S'),
                                                 mmengine=mmengine.__version__, mmdg_sharded=True)
        ckpt.update(extra_ckpt)
        if callback is not None:
            callback(ckpt)  # the hooks' before_save_checkpoint (they may drop entries: adapter-only checkpoints)
        if 'ema_state_dict' in ckpt:  # the config check refuses EMAHook with this strategy; a direct build too
            raise RuntimeError('FSDP2Strategy does not save an EMA copy of a sharded model: drop the EMAHook')
        shards = {k: ckpt.pop(k) for k in SHARDED_ENTRIES if k in ckpt}
        # rank 0's pid in the name: remove_stale_temporaries clears a folder whose writer was killed
        name = [TMP_PREFIX + f'{os.getpid()}-' + osp.basename(filename)]
        dist.broadcast_object_list(name, src=0)
        tmp = osp.join(osp.dirname(filename), name[0])
        if is_main_process():
            os.makedirs(tmp)
            atomic_save(ckpt, osp.join(tmp, EXTRA_FILE))
        dist.barrier()
        dcp.save(shards, checkpoint_id=tmp)  # returns on every rank once the metadata (written last) is in
        if is_main_process():
            shutil.rmtree(filename, ignore_errors=True)
            os.replace(tmp, filename)
        dist.barrier()

    def load_checkpoint(self, filename: str, *, map_location='cpu', strict: bool = False,
                        revise_keys: list = [(r'^module.', '')], callback: Optional[Callable] = None) -> dict:  # noqa: B006
        # a whole file (load_from a plain checkpoint: every process takes its shards of it), or one process
        # (safe_torch_load reads a sharded folder whole)
        if not osp.isdir(filename) or not self.sharded:
            return super().load_checkpoint(filename, map_location=map_location, strict=strict,
                                           revise_keys=revise_keys, callback=callback)
        import torch.distributed.checkpoint as dcp
        from torch.distributed.checkpoint.state_dict import set_model_state_dict
        if not is_sharded_checkpoint(filename):
            read_sharded_checkpoint(filename)  # raises, naming what is missing
        self.logger.info(f'Load sharded checkpoint from {filename} (rank {get_rank()})')
        stored = set(dcp.FileSystemReader(filename).read_metadata().state_dict_metadata)
        shards = {'state_dict': self.model_state_dict()}
        if hasattr(self, 'optim_wrapper') and any(k.startswith('optimizer.') for k in stored):
            shards['optimizer'] = self.optim_state_dict()
        # an adapter-only checkpoint holds what trains (and the head): the rest comes from the pre-trained weights
        shards['state_dict'] = {k: v for k, v in shards['state_dict'].items() if f'state_dict.{k}' in stored}
        dcp.load(shards, checkpoint_id=filename)
        set_model_state_dict(self.model, shards['state_dict'], options=_partial())
        ckpt = safe_torch_load(osp.join(filename, EXTRA_FILE))
        ckpt.update(shards)
        if callback is not None:
            callback(ckpt)
        return ckpt


def _partial():
    from torch.distributed.checkpoint.state_dict import StateDictOptions
    return StateDictOptions(strict=False)
