"""Co-DINO (mmdg/models/detectors/co_dino.py) at toy size: every head's loss is there and learns, the
auxiliary heads stay out of inference (which equals mmdet's plain DINO on the same weights), and a
2-process gloo run leaves no parameter without a gradient."""
import copy
import os
import os.path as osp

import pytest
import torch
from mmengine.config import Config

from conftest import REPO

BASE = osp.join(REPO, 'configs', '_base_', 'models', 'codino_vit-l_det.py')


def tiny_codino_cfg() -> dict:
    """The published Co-DINO structure at toy size: a 4-block ViT of width 64 (strides 4-32), one encoder
    and two decoder layers, 10 queries, small samplers. embed_dims stay 256 (mmdet's DINO decoder
    hard-codes 128 position features)."""
    from mmdg.testing import toy_det_model
    cfg = Config.fromfile(BASE)
    toy_det_model(cfg)
    cfg.model.backbone.frozen_blocks = 0  # every block trains: the gradient tests reach the whole ViT
    return cfg.model.to_dict()


def build(cfg: dict):
    from mmengine.registry import DefaultScope
    from mmdg.registry import MODELS
    import mmdg.models  # noqa: F401
    with DefaultScope.overwrite_default_scope('mmdg'):  # as a config with default_scope='mmdg' builds it
        model = MODELS.build(copy.deepcopy(cfg))
    model.init_weights()
    return model


def batch(seed: int = 0, n: int = 2):
    """Two 64x64 images with 2-3 boxes each, already normalised, as the data preprocessor leaves them."""
    from mmdet.structures import DetDataSample
    from mmengine.structures import InstanceData
    g = torch.Generator().manual_seed(seed)
    inputs = torch.randn(n, 3, 64, 64, generator=g)
    samples = []
    for i in range(n):
        k = 2 + i % 2
        xy = torch.rand(k, 2, generator=g) * 32
        wh = 12 + torch.rand(k, 2, generator=g) * 20
        s = DetDataSample(metainfo=dict(img_shape=(64, 64), ori_shape=(64, 64), pad_shape=(64, 64),
                                        batch_input_shape=(64, 64), scale_factor=(1.0, 1.0)))
        s.gt_instances = InstanceData(bboxes=torch.cat([xy, (xy + wh).clamp(max=63)], 1),
                                      labels=torch.randint(0, 7, (k,), generator=g))
        samples.append(s)
    return inputs, samples


def _groups(losses):
    """Sum of each head's losses: the DINO head, RPN, RoI head, ATSS head, and each auxiliary query group."""
    out = {}
    for k, v in losses.items():
        if 'loss' not in k:
            continue
        v = sum(v) if isinstance(v, (list, tuple)) else v
        head = ('rpn' if 'rpn' in k else k.split('.')[0] if k.startswith(('roi', 'dense', 'co')) else 'dino')
        out[head] = out.get(head, 0) + v
    return out


@pytest.mark.tool
def test_every_head_has_a_loss_and_learns():
    torch.manual_seed(0)
    model = build(tiny_codino_cfg())
    model.train()
    inputs, samples = batch()
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=2e-4)
    history = []
    for _ in range(8):
        losses = model.loss(inputs, copy.deepcopy(samples))
        groups = _groups(losses)
        history.append({k: float(v) for k, v in groups.items()})
        opt.zero_grad()
        sum(groups.values()).backward()
        opt.step()
    keys = set(losses)
    for k in ['loss_cls', 'loss_bbox', 'loss_iou', 'enc_loss_cls', 'dn_loss_cls', 'loss_rpn_cls', 'loss_rpn_bbox',
              'roi0.loss_cls', 'roi0.loss_bbox', 'dense0.loss_cls', 'dense0.loss_bbox', 'dense0.loss_centerness',
              'co0.loss_cls', 'co0.loss_bbox', 'co0.loss_iou', 'co0.d0.loss_cls', 'co1.loss_cls', 'co1.loss_iou']:
        assert k in keys, (k, sorted(keys))
    assert set(history[0]) == {'dino', 'rpn', 'roi0', 'dense0', 'co0', 'co1'}
    for head in history[0]:
        first = history[0][head]
        last = min(h[head] for h in history[-3:])
        assert last < first, (head, [h[head] for h in history])


def _plain_dino_cfg(cfg: dict) -> dict:
    cfg = copy.deepcopy(cfg)
    for k in ('rpn_head', 'roi_head', 'aux_bbox_head', 'max_pos_coords', 'transformer_init'):
        cfg.pop(k)
    cfg['type'] = 'DINO'
    cfg['bbox_head']['type'] = 'DINOHead'
    cfg['bbox_head'].pop('reference_eps')
    cfg['test_cfg'].pop('nms', None)
    return cfg


def test_inference_is_plain_dino_without_aux_heads():
    cfg = tiny_codino_cfg()
    cfg['test_cfg'].pop('nms')
    model = build(cfg).eval()
    model.bbox_head.reference_eps = 1e-5  # mmdet's DINO head's (the official Co-DINO's 1e-3: tested below)
    dino = build(_plain_dino_cfg(cfg)).eval()
    missing, unexpected = dino.load_state_dict(model.state_dict(), strict=False)
    assert not missing
    assert unexpected and all(k.split('.')[0] in ('rpn_head', 'roi_head', 'aux_bbox_head', 'aux_pos_trans',
                                                   'aux_pos_trans_norm', 'downsample') for k in unexpected)

    def fail(*a, **k):
        raise AssertionError('an auxiliary head ran at test time')
    for head in [model.rpn_head, *model.roi_head, *model.aux_bbox_head, model.downsample]:
        head.forward = fail
    inputs, samples = batch(1)
    with torch.no_grad():
        ours = model.predict(inputs, copy.deepcopy(samples))
        ref = dino.predict(inputs, copy.deepcopy(samples))
    for a, b in zip(ours, ref):
        torch.testing.assert_close(a.pred_instances.bboxes, b.pred_instances.bboxes)
        torch.testing.assert_close(a.pred_instances.scores, b.pred_instances.scores)
        assert torch.equal(a.pred_instances.labels, b.pred_instances.labels)

    # the published test setting adds soft-NMS (IoU 0.8) after the top-k: scores only decay
    model.bbox_head.test_cfg['nms'] = dict(type='soft_nms', iou_threshold=0.8)
    with torch.no_grad():
        nms = model.predict(inputs, copy.deepcopy(samples))
    for a, b in zip(nms, ref):
        assert len(a.pred_instances) <= len(b.pred_instances)
        assert a.pred_instances.scores.max() <= b.pred_instances.scores.max() + 1e-6


def _ddp_worker(rank, world, port, out_dir):
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel
    os.environ.update(MASTER_ADDR='127.0.0.1', MASTER_PORT=str(port))
    torch.set_num_threads(1)
    dist.init_process_group('gloo', rank=rank, world_size=world)
    try:
        torch.manual_seed(0)
        model = build(tiny_codino_cfg()).train()
        ddp = DistributedDataParallel(model, find_unused_parameters=False)
        inputs, samples = batch(seed=rank)
        for _ in range(2):  # a parameter left out of the first backward makes DDP fail in the second
            losses = ddp(inputs, copy.deepcopy(samples), mode='loss')
            total = sum(sum(v) if isinstance(v, (list, tuple)) else v for k, v in losses.items() if 'loss' in k)
            ddp.zero_grad()
            total.backward()
            unused = [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None]
        with open(osp.join(out_dir, f'{rank}.txt'), 'w') as f:
            f.write('\n'.join(unused) if unused else 'OK')
    finally:
        dist.destroy_process_group()


def test_two_process_gloo_no_unused_parameters(tmp_path):
    import socket
    import torch.multiprocessing as mp
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        port = s.getsockname()[1]
    # fork: the workers inherit the imported modules (spawn would re-import mmdet, ~20 s each here)
    mp.start_processes(_ddp_worker, args=(2, port, str(tmp_path)), nprocs=2, join=True, start_method='fork')
    for rank in range(2):
        assert (tmp_path / f'{rank}.txt').read_text() == 'OK'


def test_reference_eps_and_init_as_the_official_codino():
    """The head un-sigmoids its reference points with eps 1e-3 (official Co-DINO head; mmdet's DINO head
    1e-5): a box at the image border or under a pixel comes out differently, one inside the image does not.
    The auxiliary heads get their own init (ATSS's prior bias), which a torch ModuleList hid from mmengine;
    transformer_init='official' leaves the transformer's matrices at their construction values."""
    from mmdet.models.layers.transformer import inverse_sigmoid
    from mmdet.models.utils import multi_apply  # noqa: F401  (mmdet importable)
    from mmengine.model import bias_init_with_prob
    model = build(tiny_codino_cfg())
    head = model.bbox_head
    assert head.reference_eps == 1e-3
    layers = model.decoder.num_layers
    hidden = torch.randn(layers, 1, 3, head.embed_dims)
    refs = torch.tensor([[0.5, 0.5, 0.2, 0.2], [0.99995, 0.5, 0.1, 0.1], [0.5, 0.5, 0.2, 0.000002]])
    references = [refs[None]] * (layers + 1)
    with torch.no_grad():
        _, coords = head(hidden, references)
        want = (head.reg_branches[-1](hidden[-1]) + inverse_sigmoid(refs[None], eps=1e-3)).sigmoid()
        torch.testing.assert_close(coords[-1], want)
        head.reference_eps = 1e-5
        _, coords_mmdet = head(hidden, references)
    torch.testing.assert_close(coords[-1][0, 0], coords_mmdet[-1][0, 0])  # inside the image: the same
    assert not torch.allclose(coords[-1][0, 1:], coords_mmdet[-1][0, 1:])  # at the border / tiny: not

    torch.manual_seed(0)
    official = build(tiny_codino_cfg())
    before = {k: v.clone() for k, v in official.state_dict().items()}
    official.init_weights()
    atss_cls = official.aux_bbox_head[0].atss_cls.bias
    assert torch.allclose(atss_cls, torch.full_like(atss_cls, bias_init_with_prob(0.01)))
    enc = 'encoder.layers.0.ffn.layers.0.0.weight'
    assert torch.equal(official.state_dict()[enc], before[enc])  # PyTorch's default, as constructed
    torch.manual_seed(0)
    mmdet_init = build(dict(tiny_codino_cfg(), transformer_init='mmdet'))
    mmdet_init.init_weights()
    assert not torch.equal(mmdet_init.state_dict()[enc], before[enc])  # xavier-uniform redrawn
    with pytest.raises(ValueError, match='transformer_init'):
        build(dict(tiny_codino_cfg(), transformer_init='xavier'))
