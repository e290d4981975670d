"""Co-DINO: mmdet's DINO trained with collaborative hybrid assignments (Co-DETR).

During training, auxiliary one-to-many heads (an RPN + Faster R-CNN RoI head, an ATSS head) run on the
encoder's output, reshaped back into a feature pyramid, and learn with their own dense assignments. Each
of these heads then hands its assigned priors (positives, padded with negatives) to the decoder as an
extra group of "customised positive queries": the queries start from the priors' boxes, and their targets
are the ground-truth boxes the head assigned, so no Hungarian matching is needed for them. At test time
only the DINO path runs (the auxiliary heads are training-only), optionally followed by (soft-)NMS.

The classes are registered in mmdet's registry (mmdet builds a detector's parts in its own scope, so the
config names the model with ``_scope_='mmdet'`` as for DINO) and in mmdg's.
"""
import copy
from typing import Dict, List, Optional, Tuple

import torch
import torch.nn as nn
from mmcv.ops import batched_nms
from mmdet.models.dense_heads import ATSSHead, DINOHead
from mmdet.models.detectors import DINO
from mmdet.models.layers.transformer import inverse_sigmoid
from mmdet.models.losses import QualityFocalLoss
from mmdet.models.roi_heads import StandardRoIHead
from mmdet.registry import MODELS as MMDET_MODELS
from mmdet.structures import SampleList
from mmdet.structures.bbox import bbox_cxcywh_to_xyxy, bbox_overlaps, bbox_xyxy_to_cxcywh
from mmdet.utils import reduce_mean
from mmengine.config import ConfigDict
from mmengine.model import BaseModule, ModuleList
from mmengine.registry import DefaultScope
from torch import Tensor

from mmdg.registry import MODELS


def _register(cls):
    MMDET_MODELS.register_module(module=cls)
    MODELS.register_module(module=cls)
    return cls


@_register
class CoDINOHead(DINOHead):
    """DINO's head with (1) an optional NMS after the top-k selection at test time (soft-NMS in the
    published Co-DINO recipe), (2) the one-to-one loss of the auxiliary query groups, whose targets
    are given by the auxiliary heads instead of a Hungarian matching, and (3) the reference points of its
    predictions un-sigmoided with ``reference_eps`` (official Co-DINO head: 1e-3, in its forward and in
    its auxiliary-query path; mmdet's DINO head: 1e-5), which changes boxes near the image border and
    boxes under about a pixel."""

    def __init__(self, *args, reference_eps: float = 1e-3, **kwargs):
        super().__init__(*args, **kwargs)
        self.reference_eps = reference_eps

    def forward(self, hidden_states: Tensor, references: List[Tensor]) -> Tuple[Tensor, Tensor]:
        """mmdet's ``DeformableDETRHead.forward`` with ``inverse_sigmoid(reference, eps=reference_eps)``."""
        classes, coords = [], []
        for layer_id in range(hidden_states.shape[0]):
            reference = inverse_sigmoid(references[layer_id], eps=self.reference_eps)
            hidden_state = hidden_states[layer_id]
            tmp = self.reg_branches[layer_id](hidden_state)
            if reference.shape[-1] == 4:
                tmp = tmp + reference
            else:
                tmp = torch.cat([tmp[..., :2] + reference, tmp[..., 2:]], dim=-1)
            classes.append(self.cls_branches[layer_id](hidden_state))
            coords.append(tmp.sigmoid())
        return torch.stack(classes), torch.stack(coords)

    def _predict_by_feat_single(self, cls_score, bbox_pred, img_meta, rescale=True):
        results = super()._predict_by_feat_single(cls_score, bbox_pred, img_meta, rescale)
        nms_cfg = self.test_cfg.get('nms') if self.test_cfg else None
        if nms_cfg and len(results) > 0:
            dets, keep = batched_nms(results.bboxes, results.scores, results.labels, nms_cfg)
            results = results[keep]
            results.scores = dets[:, -1]  # soft-NMS decays the scores
            results = results[:self.test_cfg.get('max_per_img', len(results))]
        return results

    def loss_aux(self, hidden_states: Tensor, references: List[Tensor], targets: Tuple[Tensor, ...],
                 batch_img_metas: List[dict], prefix: str) -> Dict[str, Tensor]:
        """Losses of one auxiliary query group on every decoder layer (``<prefix>.loss_*`` for the last
        layer, ``<prefix>.d<i>.loss_*`` for the others, as DINO names its layers)."""
        all_cls, all_coords = self(hidden_states, references)
        losses = {}
        num_layers = len(all_cls)
        for i in range(num_layers):
            cls, bbox, iou = self._loss_given_targets(all_cls[i], all_coords[i], *targets, batch_img_metas)
            tag = prefix if i == num_layers - 1 else f'{prefix}.d{i}'
            losses[f'{tag}.loss_cls'] = cls
            losses[f'{tag}.loss_bbox'] = bbox
            losses[f'{tag}.loss_iou'] = iou
        return losses

    def _loss_given_targets(self, cls_scores, bbox_preds, labels, label_weights, bbox_targets,
                            bbox_weights, batch_img_metas):
        # As DETRHead.loss_by_feat_single after its matching; targets are normalised cx, cy, w, h.
        labels = labels.reshape(-1)
        label_weights = label_weights.reshape(-1)
        bbox_targets = bbox_targets.reshape(-1, 4)
        bbox_weights = bbox_weights.reshape(-1, 4)
        cls_scores = cls_scores.reshape(-1, self.cls_out_channels)
        pos = ((labels >= 0) & (labels < self.num_classes)).nonzero().squeeze(1)
        num_pos = pos.numel()
        cls_avg_factor = num_pos * 1.0 + (labels.numel() - num_pos) * self.bg_cls_weight
        if self.sync_cls_avg_factor:
            cls_avg_factor = reduce_mean(cls_scores.new_tensor([cls_avg_factor]))
        cls_avg_factor = max(cls_avg_factor, 1)
        if isinstance(self.loss_cls, QualityFocalLoss):
            scores = label_weights.new_zeros(labels.shape)
            scores[pos] = bbox_overlaps(
                bbox_cxcywh_to_xyxy(bbox_preds.reshape(-1, 4)[pos].detach()),
                bbox_cxcywh_to_xyxy(bbox_targets[pos]), is_aligned=True)
            loss_cls = self.loss_cls(cls_scores, (labels, scores), label_weights, avg_factor=cls_avg_factor)
        else:
            loss_cls = self.loss_cls(cls_scores, labels, label_weights, avg_factor=cls_avg_factor)
        num_total_pos = torch.clamp(reduce_mean(loss_cls.new_tensor([num_pos])), min=1).item()
        factors = torch.cat([
            bbox_preds.new_tensor([m['img_shape'][1], m['img_shape'][0]] * 2).repeat(bbox_preds.size(1), 1)
            for m in batch_img_metas])
        bbox_preds = bbox_preds.reshape(-1, 4)
        loss_iou = self.loss_iou(bbox_cxcywh_to_xyxy(bbox_preds) * factors,
                                 bbox_cxcywh_to_xyxy(bbox_targets) * factors, bbox_weights,
                                 avg_factor=num_total_pos)
        loss_bbox = self.loss_bbox(bbox_preds, bbox_targets, bbox_weights, avg_factor=num_total_pos)
        return loss_cls, loss_bbox, loss_iou


@_register
class CoATSSHead(ATSSHead):
    """ATSS head that also reports its assignment (every anchor, its label, its target box; the
    background label is ``num_classes``) for the decoder's auxiliary queries."""

    def get_targets(self, *args, **kwargs):
        targets = super().get_targets(*args, **kwargs)
        self._assignment = targets
        return targets

    def pop_assignment(self) -> List[Tuple[Tensor, Tensor, Tensor]]:
        anchors, labels, _, bbox_targets = self._assignment[:4]
        self._assignment = None
        anchors, labels, bbox_targets = (torch.cat(t, 1) for t in (anchors, labels, bbox_targets))
        # reg_decoded_bbox (ATSS's default with a GIoU loss): the targets are ground-truth boxes
        assert self.reg_decoded_bbox, 'CoATSSHead needs reg_decoded_bbox=True'
        return [(a, l, t) for a, l, t in zip(anchors, labels, bbox_targets)]


@_register
class CoStandardRoIHead(StandardRoIHead):
    """Faster R-CNN RoI head that also reports its sampled proposals (positives first, then negatives)
    with their labels and ground-truth boxes for the decoder's auxiliary queries."""

    def bbox_loss(self, x, sampling_results):
        self._assignment = [
            (res.priors,
             torch.cat([res.pos_gt_labels, res.pos_gt_labels.new_full((len(res.neg_priors),),
                                                                       self.bbox_head.num_classes)]),
             torch.cat([res.pos_gt_bboxes, res.pos_gt_bboxes.new_zeros((len(res.neg_priors), 4))]))
            for res in sampling_results]
        return super().bbox_loss(x, sampling_results)

    def pop_assignment(self) -> List[Tuple[Tensor, Tensor, Tensor]]:
        out, self._assignment = self._assignment, None
        return out


@_register
class CoDINO(DINO):
    """DINO + collaborative hybrid assignment training.

    Args (besides DINO's):
        rpn_head, roi_head (list), aux_bbox_head (list): the auxiliary heads, each with its own
            ``train_cfg`` / ``test_cfg`` and the DINO head's ``num_classes``; they see the encoder's levels plus one more (stride x2 of the
            last, from ``downsample``). The RoI heads see the levels their extractor has strides for.
        with_pos_coord: feed the RoI and dense heads' assignments to the decoder as query groups.
        max_pos_coords: at most this many positives per image and group (the rest sampled out).
        min_pos_coords: each group has at least this many queries (padding with negatives).
        transformer_init: ``'official'`` (default): the encoder / decoder / query projections keep PyTorch's
            default init, as in the official Co-DINO, whose transformer ``init_weights`` is never called (the
            heads' and deformable attention's own inits run in both modes; the level embeddings, left as
            uninitialised memory there, are drawn from N(0, 1) as that unused init intended);
            ``'mmdet'``: mmdet's DINO init (xavier-uniform over the transformer's matrices).
    """

    def __init__(self, *args, rpn_head: Optional[dict] = None, roi_head: Optional[List[dict]] = None,
                 aux_bbox_head: Optional[List[dict]] = None, with_pos_coord: bool = True,
                 max_pos_coords: int = 300, min_pos_coords: int = 9, transformer_init: str = 'official',
                 **kwargs) -> None:
        if transformer_init not in ('official', 'mmdet'):
            raise ValueError(f"transformer_init={transformer_init!r}: use 'official' or 'mmdet'")
        self.transformer_init = transformer_init
        # mmdet builds the parts through the current scope; under an mmdg config it must be mmdet's
        with DefaultScope.overwrite_default_scope('mmdet'):
            super().__init__(*args, **kwargs)
            self.with_pos_coord = with_pos_coord
            self.max_pos_coords = max_pos_coords
            self.min_pos_coords = min_pos_coords
            # the auxiliary heads predict the DINO head's classes (one num_classes to set in a config);
            # ConfigDict: the heads read their train_cfg / test_cfg by attribute
            num_classes = self.bbox_head.num_classes
            roi_head = [ConfigDict(c) for c in roi_head or []]
            for c in roi_head:
                c.bbox_head.num_classes = num_classes
            aux_bbox_head = [ConfigDict(c, num_classes=num_classes) for c in aux_bbox_head or []]
            self.rpn_head = MMDET_MODELS.build(ConfigDict(rpn_head)) if rpn_head else None
            # mmengine's ModuleList: init_weights reaches the heads inside (a torch one hides them, and the
            # ATSS prior bias, the RoI head's small regression init never ran; the official calls each one)
            self.roi_head = ModuleList(MMDET_MODELS.build(c) for c in roi_head)
            self.aux_bbox_head = ModuleList(MMDET_MODELS.build(c) for c in aux_bbox_head)
        if self.roi_head and self.rpn_head is None:
            raise ValueError('roi_head needs rpn_head for its proposals')
        num_groups = (len(self.roi_head) + len(self.aux_bbox_head)) if with_pos_coord else 0
        # one query projection per auxiliary group: sine embedding of the prior box -> content query
        self.aux_pos_trans = nn.ModuleList(nn.Linear(self.embed_dims * 2, self.embed_dims)
                                           for _ in range(num_groups))
        self.aux_pos_trans_norm = nn.ModuleList(nn.LayerNorm(self.embed_dims) for _ in range(num_groups))
        self.downsample = nn.Sequential(
            nn.Conv2d(self.embed_dims, self.embed_dims, kernel_size=3, stride=2, padding=1),
            nn.GroupNorm(32 if self.embed_dims % 32 == 0 else 1, self.embed_dims))

    def init_weights(self) -> None:
        if self.transformer_init == 'mmdet':
            return super().init_weights()
        BaseModule.init_weights(self)  # the children's own inits: backbone, neck, heads, deformable attention
        nn.init.normal_(self.level_embed)

    @property
    def with_aux(self) -> bool:
        return self.rpn_head is not None or len(self.roi_head) > 0 or len(self.aux_bbox_head) > 0

    def loss(self, batch_inputs: Tensor, batch_data_samples: SampleList) -> Dict[str, Tensor]:
        img_feats = self.extract_feat(batch_inputs)
        # DINO's forward_transformer, keeping the encoder's output for the auxiliary heads
        encoder_inputs, decoder_inputs = self.pre_transformer(img_feats, batch_data_samples)
        encoder_outputs = self.forward_encoder(**encoder_inputs)
        tmp_dec_in, head_inputs = self.pre_decoder(**encoder_outputs, batch_data_samples=batch_data_samples)
        decoder_inputs.update(tmp_dec_in)
        head_inputs.update(self.forward_decoder(**decoder_inputs))
        losses = self.bbox_head.loss(**head_inputs, batch_data_samples=batch_data_samples)
        if not self.with_aux:
            return losses

        feats = self.memory_to_levels(encoder_outputs['memory'], encoder_outputs['spatial_shapes'])
        batch_img_metas = [s.metainfo for s in batch_data_samples]
        assignments = []
        if self.rpn_head is not None:
            rpn_samples = copy.deepcopy(batch_data_samples)
            for s in rpn_samples:  # class-agnostic proposals
                s.gt_instances.labels = torch.zeros_like(s.gt_instances.labels)
            proposal_cfg = self.rpn_head.train_cfg.get('rpn_proposal', self.rpn_head.test_cfg)
            rpn_losses, proposals = self.rpn_head.loss_and_predict(feats, rpn_samples,
                                                                   proposal_cfg=proposal_cfg)
            losses.update(rpn_losses)
        for i, head in enumerate(self.roi_head):
            n = len(head.bbox_roi_extractor.featmap_strides)
            roi_losses = head.loss(feats[:n], copy.deepcopy(proposals), batch_data_samples)
            losses.update({f'roi{i}.{k}': v for k, v in roi_losses.items()})
            assignments.append(head.pop_assignment())
        for i, head in enumerate(self.aux_bbox_head):
            dense_losses = head.loss(feats, batch_data_samples)
            losses.update({f'dense{i}.{k}': v for k, v in dense_losses.items()})
            assignments.append(head.pop_assignment())

        if self.with_pos_coord:
            for g, assignment in enumerate(assignments):
                coords, targets = self.aux_queries(assignment, batch_img_metas)
                query = self.aux_pos_trans_norm[g](self.aux_pos_trans[g](
                    self.get_proposal_pos_embed(inverse_sigmoid(coords), num_pos_feats=self.embed_dims // 2)))
                outs = self.forward_decoder(
                    query=query, memory=encoder_outputs['memory'], memory_mask=decoder_inputs['memory_mask'],
                    reference_points=coords, spatial_shapes=decoder_inputs['spatial_shapes'],
                    level_start_index=decoder_inputs['level_start_index'],
                    valid_ratios=decoder_inputs['valid_ratios'])
                losses.update(self.bbox_head.loss_aux(outs['hidden_states'], outs['references'], targets,
                                                      batch_img_metas, prefix=f'co{g}'))
        return losses

    def memory_to_levels(self, memory: Tensor, spatial_shapes: Tensor) -> List[Tensor]:
        """The encoder's output as (bs, C, h, w) maps, plus one level at twice the last stride."""
        bs, _, c = memory.shape
        sizes = [int(h) * int(w) for h, w in spatial_shapes]
        feats = [m.transpose(1, 2).reshape(bs, c, int(h), int(w))
                 for m, (h, w) in zip(memory.split(sizes, dim=1), spatial_shapes)]
        return feats + [self.downsample(feats[-1])]

    def aux_queries(self, assignment, batch_img_metas):
        """Prior boxes (reference points) and one-to-one targets of one auxiliary group, batched.

        Each image keeps its positives (at most ``max_pos_coords``, sampled) and is padded to the batch's
        group size with negatives (background label, no box loss), as the published method does; an
        image short of negatives is padded with zero boxes that carry no loss at all."""
        num_classes = self.bbox_head.num_classes
        num_pos = [int(((l >= 0) & (l < num_classes)).sum()) for _, l, _ in assignment]
        size = max(self.min_pos_coords, min(self.max_pos_coords, max(num_pos)))
        coords, labels, label_w, boxes, box_w = [], [], [], [], []
        for (prior, label, target), meta in zip(assignment, batch_img_metas):
            h, w = meta['img_shape'][:2]
            factor = prior.new_tensor([w, h, w, h])
            pos = ((label >= 0) & (label < num_classes)).nonzero().squeeze(1)
            neg = (label == num_classes).nonzero().squeeze(1)
            if len(pos) > size:
                pos = pos[torch.randperm(len(pos), device=pos.device)[:size]]
            neg = neg[torch.randperm(len(neg), device=neg.device)[:size - len(pos)]]
            idx = torch.cat([pos, neg])
            n_pad = size - len(idx)
            coords.append(torch.cat([bbox_xyxy_to_cxcywh(prior[idx] / factor), prior.new_zeros(n_pad, 4)]))
            labels.append(torch.cat([label[idx], label.new_full((n_pad,), num_classes)]))
            label_w.append(torch.cat([prior.new_ones(len(idx)), prior.new_zeros(n_pad)]))
            tgt = bbox_xyxy_to_cxcywh(target[pos] / factor)
            boxes.append(torch.cat([tgt, prior.new_zeros(size - len(pos), 4)]))
            bw = prior.new_zeros(size, 4)
            bw[:len(pos)] = 1
            box_w.append(bw)
        stack = torch.stack
        return stack(coords).detach(), (stack(labels), stack(label_w), stack(boxes).detach(), stack(box_w))
