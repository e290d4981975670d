"""DINOv2 / EVA02 ViT backbones from timm for mmseg and mmdet, with adapters injected by config."""
from __future__ import annotations

from typing import Dict, Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
from mmengine.model import BaseModule

from mmdg.adapters import inject_adapters
from mmdg.convert.vit import (build_timm_vit, check_patch_resample, load_vit_weights,
                                               use_pos_resample)
from mmdg.registry import MODELS


@MODELS.register_module()
class TimmViT(BaseModule):
    """A timm ViT (``arch``: an mmdg name such as ``'dinov2-l'`` or any timm model name) returning four
    feature maps.

    Args:
        arch: see :data:`mmdg.convert.vit.ARCHS`, or a timm model name.
        img_size: training input size (int or ``(h, w)``); position embeddings are resampled to it at
            load time and interpolated on the fly for other sizes (sliding windows, test scales).
        patch_size: 14 (native) or 16 (the patch kernel is resampled, as in the SoRA/Rein recipe).
        out_indices: blocks whose outputs are returned (DINOv2-L recipe: 7, 11, 15, 23).
        out_strides: strides the four maps are resized to (bilinear), or ``None`` to keep the patch
            stride (for a learnable pyramid neck such as mmseg's ``Feature2Pyramid``).
        pretrained: local path to weights in the official DINOv2 / EVA02 or timm layout (converted on the
            fly), or to a checkpoint made by ``tools/convert/vit.py``. Loaded *before* the adapters
            are injected, so SVD-based adapters decompose the pre-trained weights.
        patch_resample: how ``pretrained``'s patch kernel and position grid are resampled to
            ``patch_size`` / ``img_size``: ``'pinv'`` (timm's pseudo-inverse kernel, antialiased
            positions) or ``'bicubic'`` (plain bicubic interpolation of both, the official SoRA/SoMA
            conversion; its released models were trained on those tokens). A file that already has the
            model's sizes is loaded as it is either way.
        pos_resample: how the position grid is resampled for inputs of another size than ``img_size``
            (whole-image tests, detection scales, TTA; sliding windows of the crop size need none):
            ``'timm'`` (by size, antialiased) or ``'dinov2'`` (DINOv2's own ``interpolate_pos_encoding``, as
            the official SoRA/SoMA and Rein backbones: the recipes that reproduce them use it).
        adapter: ``dict(type='SoRA', ...)`` for :func:`mmdg.adapters.inject_adapters`, or ``None``.
        frozen_blocks: the first k blocks (and the embeddings) get no trainable parameter.
        freeze: freeze the whole ViT (the "frozen backbone" baseline).
        frozen_params: parameters whose name contains one of these strings stay frozen whatever the
            method (the official full fine-tuning keeps norms, layer scales and embeddings fixed:
            ``('norm1', 'norm2', 'ls1', 'ls2', 'pos_embed', 'patch_embed')``).
        out_norm: apply the final norm to the returned features.
        grad_checkpointing: recompute each block's activations in the backward pass (timm's own
            switch, non-reentrant) instead of storing them: less memory for about 1/3 more compute.
        model_kwargs: extra keyword arguments for ``timm.create_model``.
        return_queries: also return the query embeddings that an adapter makes (Rein with
            ``link_queries=True``): ``forward`` gives ``(features, queries)`` for a head that takes them
            (``ReinMask2FormerHead``).
    """

    def __init__(self,
                 arch: str = 'dinov2-l',
                 img_size: Union[int, Tuple[int, int]] = 512,
                 patch_size: int = 16,
                 out_indices: Sequence[int] = (7, 11, 15, 23),
                 out_strides: Optional[Sequence[int]] = (4, 8, 16, 32),
                 pretrained: Optional[str] = None,
                 patch_resample: str = 'pinv',
                 pos_resample: str = 'timm',
                 adapter: Optional[Dict] = None,
                 frozen_blocks: int = 0,
                 freeze: bool = False,
                 frozen_params: Sequence[str] = (),
                 out_norm: bool = False,
                 drop_path_rate: float = 0.0,
                 grad_checkpointing: bool = False,
                 model_kwargs: Optional[Dict] = None,
                 return_queries: bool = False,
                 init_cfg=None):
        super().__init__(init_cfg=init_cfg)
        self.patch_resample = check_patch_resample(patch_resample)
        self.vit = build_timm_vit(arch, img_size=img_size, patch_size=patch_size,
                                  drop_path_rate=drop_path_rate, **(model_kwargs or {}))
        use_pos_resample(self.vit, pos_resample)
        depth = len(self.vit.blocks)
        self.out_indices = [i if i >= 0 else depth + i for i in out_indices]
        bad = [i for i in self.out_indices if not 0 <= i < depth]
        if bad:
            raise ValueError(f'out_indices {list(out_indices)} fall outside the {depth} blocks of {arch}')
        if out_strides is not None and len(out_strides) != len(self.out_indices):
            raise ValueError(f'out_strides {out_strides} and out_indices {out_indices} differ in length')
        if not 0 <= frozen_blocks <= depth:
            raise ValueError(f'frozen_blocks={frozen_blocks} must lie in [0, {depth}]')
        self.out_strides = out_strides
        self.out_norm = out_norm
        self.pretrained = pretrained
        if pretrained:
            load_vit_weights(self.vit, pretrained, patch_resample=patch_resample)
        if adapter is not None:
            inject_adapters(self.vit, adapter)  # after the weights: SoRA/PiSSA decompose pre-trained W
        if freeze:
            self.vit.requires_grad_(False)
        self.frozen_blocks = frozen_blocks
        self._freeze_prefix(frozen_blocks)
        if isinstance(frozen_params, str):
            frozen_params = (frozen_params,)
        for name, p in self.vit.named_parameters():
            if any(key in name for key in frozen_params):
                p.requires_grad_(False)
        # Parameters the forward never uses (the classifier's pooling norm and head, the final norm
        # unless out_norm) get no gradient: trainable, they would trip DDP's unused-parameter check.
        unused = ('fc_norm.', 'head.') + (() if out_norm else ('norm.',))
        for name, p in self.vit.named_parameters():
            if name.startswith(unused):
                p.requires_grad_(False)
        self.vit.set_grad_checkpointing(grad_checkpointing)
        self.query_source = self._find_query_source(adapter) if return_queries else None

    def _find_query_source(self, adapter: Optional[Dict]) -> str:
        # by name, not by reference: the module stays where the adapter put it (EMA copies, DDP)
        found = [n for n, m in self.vit.named_modules()
                 if callable(getattr(m, 'query_embeddings', None)) and getattr(m, 'link_queries', True)]
        if len(found) != 1:
            raise ValueError(f'return_queries=True needs exactly one adapter that makes query embeddings (Rein '
                             f'with link_queries=True); found {len(found)} in the ViT (adapter={adapter})')
        return found[0]

    def _freeze_prefix(self, k: int) -> None:
        if k <= 0:
            return
        for name, p in self.vit.named_parameters():
            if not name.startswith('blocks.') or int(name.split('.')[1]) < k:
                if not name.startswith('norm.'):  # the output norm follows the last block
                    p.requires_grad_(False)

    def init_weights(self) -> None:
        # The ViT holds either pre-trained weights or timm's own init from construction. mmengine's
        # default would call timm's VisionTransformer.init_weights() and re-randomise it (and the
        # adapters built from it), so only an explicit init_cfg is honoured here.
        if self.init_cfg:
            super().init_weights()
        self._is_init = True

    def forward(self, x: torch.Tensor):
        feats = self.vit.forward_intermediates(x, indices=self.out_indices, norm=self.out_norm,
                                               output_fmt='NCHW', intermediates_only=True)
        if self.out_strides is not None:
            h, w = x.shape[-2:]
            feats = [F.interpolate(f, size=(-(-h // s), -(-w // s)), mode='bilinear', align_corners=False)
                     if f.shape[-2:] != (-(-h // s), -(-w // s)) else f
                     for f, s in zip(feats, self.out_strides)]
        if self.query_source is not None:
            return tuple(feats), self.vit.get_submodule(self.query_source).query_embeddings()
        return tuple(feats)
