"""docs/parity.md: every DG segmentation config beside the official recipe it reproduces, value by value.

    python tools/parity.py            # regenerate docs/parity.md from the resolved configs
    python tools/parity.py --check    # exit 1 if docs/parity.md is stale or a difference is undocumented

The official values below were read from the public SoRA/SoMA repository (ysj9909/SoMA, the files named
in ``OFFICIAL[...]['source']``) and are written in the words this tool uses to describe our resolved
configs, so that the two columns compare as text. Every row where they differ must have a line in
``DOCUMENTED`` saying why and which switch gives the official behaviour; ``--check`` (and the test suite)
fail otherwise, so a config that drifts from the recipe cannot go unnoticed.
"""
import argparse
import functools
import glob
import json
import os.path as osp
import re
import sys
from typing import Dict, List, Optional

from mmengine.config import Config

from mmdg.utils.atomic import atomic_open
from mmdg.utils.tool_config import flatten_config as flatten

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
DOC = osp.join(REPO, 'docs', 'parity.md')
CONFIG_DIR = osp.join(REPO, 'configs', 'dg_seg')
#: Each official config's model (all but the backbone) flattened, read from the official files themselves by
#: tests/official/make_official_fixtures.py: the source of every row of the "model settings" tables.
OFFICIAL_MODELS = osp.join(REPO, 'tests', 'official', 'official_model_configs.json')




def _same_value(ours, theirs) -> bool:
    def norm(v):
        v = json.loads(json.dumps(v))
        return v[len('mmdet.'):] if isinstance(v, str) and v.startswith('mmdet.') else v  # a scope prefix only
    return norm(ours) == norm(theirs)


@functools.lru_cache(maxsize=None)
def _official_models() -> Dict[str, Dict[str, object]]:
    with open(OFFICIAL_MODELS) as f:
        return json.load(f)


def official_model(key: str) -> Dict[str, object]:
    return _official_models()[key]


#: Official model-config path -> mmdg path, first match wins; None: how the official config lays its
#: modules out (class names of its mmcv 1.x-style transformer, op order), not a setting. Unmatched: same path.
SEG_MODEL_RULES = [(r'^type$', None)]
DET_MODEL_RULES = [(re.compile(p), r) for p, r in [
    (r'^(type|use_lsj|eval_module)$', None),
    (r'^query_head\.num_query$', 'num_queries'),
    (r'^query_head\.as_two_stage$', 'as_two_stage'),
    (r'^query_head\.in_channels$', None),  # unused by the official head
    (r'^query_head\.dn_cfg\.', 'dn_cfg.'),
    (r'^query_head\.transformer\.(type|with_coord_feat|num_co_heads)$', None),
    (r'^query_head\.transformer\.num_feature_levels$', 'num_feature_levels'),
    (r'^query_head\.transformer\.(encoder|decoder)\.(type|with_cp)$', None),
    (r'^query_head\.transformer\.(encoder|decoder)\.transformerlayers\.(type|operation_order)$', None),
    (r'^query_head\.transformer\.(encoder|decoder)\.transformerlayers\.attn_cfgs(\.\d)?\.type$', None),
    (r'^query_head\.transformer\.(encoder|decoder)\.(num_layers|return_intermediate)$', r'\1.\2'),
    (r'^query_head\.transformer\.encoder\.transformerlayers\.attn_cfgs\.', 'encoder.layer_cfg.self_attn_cfg.'),
    (r'^query_head\.transformer\.decoder\.transformerlayers\.attn_cfgs\.0\.', 'decoder.layer_cfg.self_attn_cfg.'),
    (r'^query_head\.transformer\.decoder\.transformerlayers\.attn_cfgs\.1\.', 'decoder.layer_cfg.cross_attn_cfg.'),
    (r'^query_head\.transformer\.(encoder|decoder)\.transformerlayers\.feedforward_channels$',
     r'\1.layer_cfg.ffn_cfg.feedforward_channels'),
    (r'^query_head\.transformer\.(encoder|decoder)\.transformerlayers\.ffn_dropout$', r'\1.layer_cfg.ffn_cfg.ffn_drop'),
    (r'^query_head\.positional_encoding\.type$', None),
    (r'^query_head\.positional_encoding\.', 'positional_encoding.'),
    (r'^query_head\.', 'bbox_head.'),
    (r'^bbox_head\.', 'aux_bbox_head.'),
    (r'^train_cfg\.0\.', 'train_cfg.'),
    (r'^train_cfg\.1\.rpn_proposal\.', 'rpn_head.train_cfg.rpn_proposal.'),
    (r'^train_cfg\.1\.rpn\.', 'rpn_head.train_cfg.'),
    (r'^train_cfg\.1\.rcnn\.', 'roi_head.0.train_cfg.'),
    (r'^train_cfg\.2\.', 'aux_bbox_head.0.train_cfg.'),
    (r'^test_cfg\.0\.', 'test_cfg.'),
    (r'^test_cfg\.1\.rpn\.', 'rpn_head.test_cfg.'),
    (r'^test_cfg\.1\.rcnn\.', 'roi_head.0.test_cfg.'),
    (r'^test_cfg\.2\.', 'aux_bbox_head.0.test_cfg.'),
]]


def _translate(path: str, rules) -> Optional[str]:
    for pattern, repl in rules:
        if re.match(pattern, path):
            return None if repl is None else re.sub(pattern, repl, path, count=1)
    return path


#: (official model-config path, official value) -> why mmdg differs; a model row differing without a line
#: here fails the check.
MODEL_DOCUMENTED: Dict[tuple, str] = {}


def model_rows(official: Dict[str, object], cfg, rules) -> List[dict]:
    """One row per setting of the official model config (backbone aside): the official value, mmdg's value
    at the corresponding path, and whether they agree. Layout-only paths (rules -> None) are left out."""
    ours_flat = flatten(cfg.model.to_dict())
    rows = []
    for path, theirs in official.items():
        target = _translate(path, rules)
        if target is None:
            continue
        ours = ours_flat.get(target, '(absent)')
        if _same_value(ours, theirs):
            status = 'same'
        else:
            status = 'documented' if (path, json.dumps(theirs)) in MODEL_DOCUMENTED else 'UNDOCUMENTED'
        rows.append(dict(setting=path if target == path else f'{path} (mmdg: {target})', official=theirs, ours=ours,
                         status=status))
    return rows


def layout_paths(official: Dict[str, object], rules) -> List[str]:
    return [p for p in official if _translate(p, rules) is None]


# --------------------------------------------------------------------------------------------------
# Describing a resolved config, one string per setting
def _first(pipeline, *types):
    return next((t for t in pipeline if t['type'] in types), None)


def _train_datasets(cfg) -> List[dict]:
    ds = cfg.train_dataloader.dataset
    return list(ds.datasets) if ds.get('type') == 'ConcatDataset' else [ds]


def _resize_text(t: Optional[dict]) -> str:
    if t is None:
        return 'none'
    if t['type'] == 'RandomChoiceResize':
        s = list(t['scales'])
        kind = 'shortest edge' if t.get('resize_type') == 'ResizeShortestEdge' else 'scale'
        return (f'{kind} one of {s[0]}, {s[1]}, ..., {s[-1]} ({len(s)} values), long edge <= {t.get("max_size")}')
    if t['type'] == 'RandomResize':
        return f'random x{t["ratio_range"][0]}-{t["ratio_range"][1]} of {t["scale"][0]}x{t["scale"][1]}'
    if t['type'] == 'Resize':
        return f'fit {t["scale"][0]}x{t["scale"][1]}' if t.get('keep_ratio') else f'{t["scale"][0]}x{t["scale"][1]}'
    return t['type']


def train_sources(cfg):
    def name(d):
        split = f" (image list {osp.basename(d['ann_file'])})" if d.get('ann_file') else ''
        return d['type'].replace('DGDataset', '').replace('Dataset', '') + split
    return ' + '.join(name(d) for d in _train_datasets(cfg))


def starts_from(cfg):
    return 'a trained segmentor (load_from)' if cfg.get('load_from') else 'the pre-trained backbone'


def train_resize(cfg):
    return '; '.join(sorted({_resize_text(_first(d['pipeline'], 'RandomChoiceResize', 'RandomResize', 'Resize'))
                             for d in _train_datasets(cfg)}))


# Settings made of several values are dicts: each value is a row of its own ("optimizer: lr", ...).
def _crop(size, cat_max_ratio=0.75) -> dict:
    return {'size': f'{size[0]}x{size[1]}', 'cat_max_ratio': f'{cat_max_ratio:g}'}


def _optim(lr, weight_decay=0.05, type='AdamW', betas=(0.9, 0.999), eps=1e-8) -> dict:
    return {'type': type, 'lr': f'{lr:g}', 'betas': str(tuple(betas)), 'eps': f'{eps:g}',
            'weight decay': f'{weight_decay:g}'}


def _vit(arch='dinov2-l', size=512, blocks=(7, 11, 15, 23), patch=16) -> dict:
    return {'arch': arch, 'patch size': str(patch), 'input size': str(size), 'feature blocks': str(tuple(blocks))}


def _ckpt(interval, kept, best=None) -> dict:
    return {'interval': f'{interval} iterations', 'kept': str(kept),
            'selected by': f'best {best}' if best else 'none (the final iteration is the result)'}


def train_crop(cfg):
    t = _first(_train_datasets(cfg)[0]['pipeline'], 'RandomCrop')
    return _crop(t['crop_size'], t.get('cat_max_ratio', 1.0))


def train_augment(cfg):
    p = _train_datasets(cfg)[0]['pipeline']
    flip = _first(p, 'RandomFlip')
    parts = [f'flip {flip["prob"]}'] if flip else []
    if _first(p, 'PhotoMetricDistortion'):
        parts.append('photometric distortion')
    return ', '.join(parts) or 'none'


def batch_per_gpu(cfg):
    return str(cfg.train_dataloader.batch_size)


def gpus(cfg):
    total = cfg.get('auto_scale_lr', {}).get('base_batch_size')
    return str(total // cfg.train_dataloader.batch_size) if total else 'not stated'


def iterations(cfg):
    return str(cfg.train_cfg.max_iters)


def optimizer(cfg):
    o = cfg.optim_wrapper.optimizer
    return _optim(o.lr, o.weight_decay, o.type, o.betas, o.get('eps', 1e-8))


def backbone_lr(cfg):
    keys = cfg.optim_wrapper.get('paramwise_cfg', {}).get('custom_keys', {})
    return f'x{keys["backbone"].get("lr_mult", 1.0):g}' if 'backbone' in keys else 'x1'


def _schedulers(cfg, *types):
    return [s for s in cfg.param_scheduler if s['type'] in types]


def warmup(cfg):
    s = _schedulers(cfg, 'LinearLR')
    return f"linear from {s[0]['start_factor']:g} x lr over {s[0]['end'] - s[0]['begin']} iterations" if s else 'none'


def lr_schedule(cfg):
    s = _schedulers(cfg, 'PolyLR')[0]
    return f'poly power {s.power:g} to {s.eta_min:g}, iterations {s.begin}-{s.end}'


def decay_schedule(cfg):
    s = _schedulers(cfg, 'AnnealedWeightDecay', 'CosineAnnealingParamScheduler')
    return f'cosine to {s[0].eta_min:g} over iterations {s[0].begin}-{s[0].end}' if s else 'constant'


def zero_decay_annealed(cfg):
    s = _schedulers(cfg, 'AnnealedWeightDecay', 'CosineAnnealingParamScheduler')
    if not s:
        return 'stay 0 (no annealing)'
    return 'stay 0' if s[0].get('keep_zero', s[0]['type'] == 'AnnealedWeightDecay') else f'rise from 0 to {s[0].eta_min:g}'


def zero_decay(cfg):
    pw = cfg.optim_wrapper.get('paramwise_cfg', {})
    keys = list(pw.get('zero_decay_keys', ()))
    return 'norm layers; names containing ' + ', '.join(keys)


def ema(cfg):
    hooks = [h for h in cfg.get('custom_hooks', []) if h['type'] == 'EMAHook']
    if not hooks:
        return 'none'
    h = hooks[0]
    what = 'parameters and buffers' if h.get('update_buffers') else 'parameters'
    return f'from iteration {h.get("begin_iter", 0)}, momentum {h.get("momentum", 2e-4):g}, {what}'


def val_interval(cfg):
    return str(cfg.train_cfg.val_interval)


def test_mode(cfg):
    t = cfg.model.test_cfg
    if t.get('mode') == 'slide':
        return f'slide {t.crop_size[0]}x{t.crop_size[1]}, stride {t.stride[0]}'
    return t.get('mode', 'whole')


def targets(cfg):
    out = []
    for name, d in cfg.val_dataloader.dataset.domains.items():
        size = _resize_text(_first(d['pipeline'], 'Resize'))
        half = ', half-resolution set' if d.get('half_resolution') else ''
        out.append(f'{name} {d.get("split", "")} {size}{half}'.replace('  ', ' '))
    return '; '.join(out)


def test_split(cfg):
    ev = cfg.get('test_evaluator', {})
    if not isinstance(ev, dict) or ev.get('type') != 'SegPredictionWriter':
        return 'the validation targets, scored'
    domains = cfg.test_dataloader.dataset.domains
    d = next(iter(domains.values()))
    size = _resize_text(_first(d['pipeline'], 'Resize'))
    return f'{", ".join(domains)} {d.get("split")} {size}, predictions written as {ev.get("encoding")} PNGs'


def seed(cfg):
    return str(cfg.get('randomness', {}).get('seed'))


def mean_over(cfg):
    ev = cfg.val_evaluator
    return ', '.join(sorted(ev.get('mean_over') or cfg.val_dataloader.dataset.domains))


def checkpoints(cfg):
    h = cfg.default_hooks.checkpoint
    return _ckpt(h.interval, h.get('max_keep_ckpts', -1), h.get('save_best'))


def _adapter(cfg):
    return cfg.model.backbone.get('adapter') or {}


def method(cfg):
    bb, a = cfg.model.backbone, _adapter(cfg)
    if bb.get('freeze'):
        return 'frozen backbone'
    if not a:
        return 'full fine-tuning'
    blocks = a.get('blocks')
    rng = f'blocks {blocks[0]}-{blocks[1] - 1}' if blocks else 'all blocks'
    if a['type'] == 'Rein':
        return _rein_method(cfg, a, rng)
    alpha = f' alpha {a["alpha"]}' if 'alpha' in a else ''
    return f'{a["type"]} r {a.get("r")}{alpha}, {rng}'


def _rein_method(cfg, a, rng):
    link = a.get('link_queries', False)
    queries = ('query embeddings and features' if cfg.model.decode_head.get('replace_query_feat') else
               'query embeddings') if link else 'no queries'
    return f'Rein r {a.get("r", 16)}, {a.get("token_length", 100)} tokens, {queries} from the tokens, {rng}'


def frozen_in_backbone(cfg):
    bb = cfg.model.backbone
    if bb.get('freeze'):
        return 'everything'
    parts = [f'blocks 0-{bb.frozen_blocks - 1}'] if bb.get('frozen_blocks') else []
    if bb.get('frozen_params'):
        parts.append(', '.join(bb.frozen_params))
    if _adapter(cfg):
        parts.append('every weight outside the adapters')
    return '; '.join(parts) or 'nothing'


def backbone(cfg):
    bb = cfg.model.backbone
    return _vit(bb.arch, bb.img_size, bb.out_indices, bb.patch_size)


def patch_resample(cfg):
    return cfg.model.backbone.get('patch_resample', 'pinv')


_POS_TEXT = dict(dinov2='DINOv2 rule: bicubic by scale (n + 0.1) / N, no antialias',
                 timm='timm: bicubic by size, antialiased')


def pos_resample(cfg):
    return _POS_TEXT[cfg.model.backbone.get('pos_resample', 'timm')]


def svd_source(cfg):
    a = _adapter(cfg)
    if a.get('type') not in ('SoRA', 'PiSSA'):
        return 'n/a'
    return ('random init, pre-trained weights loaded over the residual' if a.get('svd_source') == 'random'
            else 'pre-trained weights')


#: (setting, extractor, method-specific). Method-specific rows are compared only for a config that is the
#: official recipe's exact counterpart (same method and backbone); other methods share every other row.
SETTINGS = [
    ('train sources', train_sources, False),
    ('starts from', starts_from, False),
    ('train resize', train_resize, False),
    ('train crop', train_crop, False),
    ('augmentation', train_augment, False),
    ('batch per GPU', batch_per_gpu, False),
    ('GPUs', gpus, False),
    ('iterations', iterations, False),
    ('optimizer', optimizer, False),
    ('backbone lr', backbone_lr, False),
    ('lr warm-up', warmup, False),
    ('lr schedule', lr_schedule, False),
    ('weight decay schedule', decay_schedule, False),
    ('zero-decay groups while annealing', zero_decay_annealed, False),
    ('zero weight decay for', zero_decay, False),
    ('EMA', ema, False),
    ('validation interval', val_interval, False),
    ('test mode', test_mode, False),
    ('validation targets', targets, False),
    ('mean/mIoU over', mean_over, False),
    ('test run', test_split, False),
    ('seed', seed, False),
    ('checkpoints', checkpoints, False),
    ('backbone', backbone, True),
    ('patch kernel 14 -> 16', patch_resample, False),
    ('position grid at other input sizes', pos_resample, True),
    ('method', method, True),
    ('frozen in the backbone', frozen_in_backbone, True),
    ('SVD of', svd_source, True),
]

# --------------------------------------------------------------------------------------------------
# The official recipes
_MS512 = 'shortest edge one of 256, 307, ..., 1024 (16 values), long edge <= 2048'
_MS1024 = 'shortest edge one of 512, 614, ..., 2048 (16 values), long edge <= 4096'
_CBM = ('cityscapes val fit 2048x1024; bdd100k val fit 1280x720; '
        'mapillary validation fit 2048x1024, half-resolution set')
_ACDC = '; '.join(f'{c} val fit 1920x1080' for c in ('fog', 'night', 'rain', 'snow'))
_SORA_ZERO_DECAY = 'norm layers; names containing norm, query_embed, query_feat, level_embed'
_SORA = dict(
    **{'train sources': 'GTA5', 'starts from': 'the pre-trained backbone', 'train resize': _MS512, 'train crop': _crop((512, 512)),
       'augmentation': 'flip 0.5, photometric distortion', 'batch per GPU': '4', 'GPUs': '1',
       'iterations': '40000', 'optimizer': _optim(1e-4),
       'backbone lr': 'x0.5', 'lr warm-up': 'none', 'lr schedule': 'poly power 0.9 to 0, iterations 0-40000',
       'weight decay schedule': 'cosine to 1e-05 over iterations 0-40000',
       'zero-decay groups while annealing': 'rise from 0 to 1e-05', 'zero weight decay for': _SORA_ZERO_DECAY,
       'EMA': 'from iteration 12000, momentum 0.0002, parameters', 'validation interval': '4000',
       'test mode': 'slide 512x512, stride 341', 'validation targets': _CBM,
       'mean/mIoU over': 'bdd100k, cityscapes, mapillary',
       'test run': 'the validation targets, scored', 'seed': '42',
       'checkpoints': _ckpt(4000, 6),
       'backbone': _vit(),
       'patch kernel 14 -> 16': 'bicubic', 'position grid at other input sizes': _POS_TEXT['dinov2'],
       'method': 'SoRA r 16 alpha 16, blocks 8-23',
       'frozen in the backbone': 'blocks 0-7; every weight outside the adapters',
       'SVD of': 'random init, pre-trained weights loaded over the residual'})
OFFICIAL: Dict[str, dict] = {
    'gta5-to-cbm sora': dict(source='configs/sora/sora_dinov2-L_mask2former.py', values=_SORA),
    'gta5-to-cbm full': dict(source='configs/fft_vfms/dinov2-L_mask2former.py', values=dict(
        _SORA, **{'backbone lr': 'x0.01', 'weight decay schedule': 'constant',
                  'zero-decay groups while annealing': 'stay 0 (no annealing)', 'EMA': 'none',
                  'method': 'full fine-tuning',
                  'frozen in the backbone': 'norm1, norm2, ls1, ls2, pos_embed, patch_embed', 'SVD of': 'n/a'})),
    'gta5-to-cbm frozen': dict(source='configs/frozen_vfms/dinov2-L_mask2former.py', values=dict(
        _SORA, **{'weight decay schedule': 'constant', 'zero-decay groups while annealing': 'stay 0 (no annealing)',
                  'EMA': 'none', 'validation interval': '10000', 'method': 'frozen backbone',
                  'checkpoints': _ckpt(10000, 4),
                  'frozen in the backbone': 'everything', 'SVD of': 'n/a'})),
    'gta5+synthia-to-cbm sora': dict(source='configs/sora/sora_dinov2-L_mask2former_gs2cbm.py', values=dict(
        _SORA, **{'train sources': 'GTA5 + SYNTHIA', 'EMA': 'none'})),
    'cityscapes-to-bm sora': dict(source='configs/sora/sora_dinov2_mask2former_c2bm.py', values=dict(
        _SORA, **{'train sources': 'Cityscapes', 'batch per GPU': '8',
                  'lr warm-up': 'linear from 0.01 x lr over 1500 iterations',
                  'lr schedule': 'poly power 0.9 to 0, iterations 1500-40000',
                  'EMA': 'from iteration 20000, momentum 0.0002, parameters',
                  'validation targets': _CBM.split('; ', 1)[1], 'mean/mIoU over': 'bdd100k, mapillary'})),
    'cityscapes-to-acdc-1024 sora': dict(source='configs/sora/sora_dinov2_mask2former_ACDC_1024x1024_bs4x2.py',
                                         values=dict(
        _SORA, **{'train sources': 'Cityscapes', 'train resize': _MS1024, 'train crop': _crop((1024, 1024)),
                  'batch per GPU': '2', 'GPUs': '4', 'lr warm-up': 'linear from 1e-06 x lr over 10000 iterations',
                  'lr schedule': 'poly power 0.9 to 0, iterations 10000-40000',
                  'EMA': 'from iteration 20000, momentum 0.0002, parameters', 'test mode': 'slide 1024x1024, stride 683',
                  'validation targets': _ACDC, 'mean/mIoU over': 'fog, night, rain, snow',
                  'test run': 'fog, night, rain, snow test fit 1920x1080, predictions written as train_id PNGs',
                  'checkpoints': _ckpt(4000, 8),
                  'backbone': _vit(size=1024)})),
}
_GSU = 'GTA5 + SYNTHIA + UrbanSyn'
_CBM_1024 = ('cityscapes val fit 2048x1024; bdd100k val fit 2048x1024; '
             'mapillary validation fit 2048x1024, half-resolution set')
_AT_1024 = {'train resize': 'random x0.5-2.0 of 2048x1024', 'train crop': _crop((1024, 1024)),
            'test mode': 'slide 1024x1024, stride 683', 'validation targets': _CBM_1024,
            'backbone': _vit(size=1024)}
OFFICIAL['gta5+synthia+urbansyn-to-cbm-512 sora'] = dict(
    source='configs/sora/sora_dinov2-L_mask2former_gsu2cbm.py',
    values=dict(_SORA, **{'train sources': _GSU, 'EMA': 'none'}))
OFFICIAL['gta5+synthia+urbansyn-to-cbm-1024 sora'] = dict(
    source='configs/sora/sora_dinov2-L_mask2former_gsu2cbm_1024x1024.py',
    values=dict(_SORA, **_AT_1024, **{'train sources': _GSU, 'EMA': 'from iteration 16000, momentum 0.0002, parameters'}))
OFFICIAL['cityscapes-1of16-to-cbm sora'] = dict(
    source='configs/sora/sora_dinov2-L_mask2former_gsuc16_2cbm_1024x1024.py',
    values=dict(_SORA, **_AT_1024, **{
        'train sources': 'Cityscapes (image list train_1_16_v1.txt)', 'starts from': 'a trained segmentor (load_from)',
        'iterations': '4000', 'optimizer': _optim(1e-5),
        'lr schedule': 'poly power 0.9 to 0, iterations 0-4000',
        'weight decay schedule': 'cosine to 1e-05 over iterations 0-4000', 'EMA': 'none',
        'validation interval': '400', 'checkpoints': _ckpt(400, 7)}))
OFFICIAL['cityscapes-to-acdc-512 sora'] = dict(
    source='configs/sora/sora_dinov2_mask2former_ACDC_512x512_bs4x2.py', values=dict(
        OFFICIAL['cityscapes-to-acdc-1024 sora']['values'],
        **{'train crop': _crop((512, 512)), 'test mode': 'slide 512x512, stride 341',
           'backbone': _SORA['backbone']}))

# Rein: the public Rein repository (w1oves/Rein). The EVA02-L model file has no training config of its
# own; its recipe is the DINOv2-L one with that model.
_REIN = dict(
    _SORA, **{'backbone lr': 'x1', 'weight decay schedule': 'constant',
              'zero-decay groups while annealing': 'stay 0 (no annealing)',
              'zero weight decay for': 'norm layers; names containing norm, query_embed, level_embed, '
                                       'learnable_tokens, reins.scale',
              'EMA': 'none', 'validation interval': '10000', 'checkpoints': _ckpt(4000, 3),
              'validation targets': ('cityscapes val fit 1024x512; bdd100k val fit 1280x720; '
                                     'mapillary validation fit 1024x512, half-resolution set'),
              'method': 'Rein r 16, 100 tokens, query embeddings and features from the tokens, all blocks',
              'frozen in the backbone': 'every weight outside the adapters', 'SVD of': 'n/a'})
OFFICIAL['gta5-to-cbm rein'] = dict(source='w1oves/Rein: configs/dinov2/rein_dinov2_mask2former_512x512_bs1x4.py',
                                    values=_REIN)
OFFICIAL['gta5-to-cbm rein-eva02'] = dict(
    source='w1oves/Rein: configs/_base_/models/rein_eva02-L_mask2former.py on the DINOv2-L recipe',
    values=dict(_REIN, backbone=_vit('eva02-l'),
                **{'position grid at other input sizes': 'none (fixed input size)'}))

# Rein's Cityscapes -> ACDC settings (its repository's configs/dinov2_citys2acdc/; the 1024 file is also the
# one under configs/dinov2/ named "bs4x2": the same file, on the Cityscapes -> ACDC data, so it is this row).
OFFICIAL['cityscapes-to-acdc-512 rein'] = dict(
    source='w1oves/Rein: configs/dinov2_citys2acdc/rein_dinov2_mask2former_512x512_bs1x4.py', values=dict(
        _REIN, **{'train sources': 'Cityscapes', 'mean/mIoU over': 'fog, night, rain, snow',
                  'validation targets': '; '.join(f'{c} val fit 960x540' for c in ('fog', 'night', 'rain', 'snow'))
                  + '; cityscapes val fit 1024x512'}))
OFFICIAL['cityscapes-to-acdc-1024 rein'] = dict(
    source='w1oves/Rein: configs/dinov2_citys2acdc/rein_dinov2_mask2former_1024x1024_bs4x2.py', values=dict(
        _REIN, **{'train sources': 'Cityscapes', 'train resize': _MS1024, 'train crop': _crop((1024, 1024)),
                  'batch per GPU': '2', 'GPUs': '4',
                  'optimizer': _optim(6e-5),
                  'lr warm-up': 'linear from 1e-06 x lr over 10000 iterations',
                  'lr schedule': 'poly power 0.9 to 0, iterations 10000-40000',
                  'test mode': 'slide 1024x1024, stride 683',
                  'validation targets': _ACDC + '; cityscapes val fit 2048x1024',
                  'mean/mIoU over': 'fog, night, rain, snow',
                  'test run': 'fog, night, rain, snow test fit 1920x1080, predictions written as train_id PNGs',
                  'backbone': _vit(size=1024)}))

#: Where we differ on purpose: (setting, official value) -> why, and the switch that gives the official one.
DOCUMENTED = {
    ('SVD of', 'random init, pre-trained weights loaded over the residual'):
        "The official code wraps the layers before the checkpoint loads, so its SVD decomposes random weights and "
        "training starts from W_pre + s·B·A; mmdg decomposes the pre-trained weights (SoRA's stated design, an "
        "exact no-op at init). Official: `model.backbone.adapter.svd_source='random'`.",
    ('zero-decay groups while annealing', 'rise from 0 to 1e-05'):
        "mmengine's cosine scheduler also moves the groups whose decay is 0 (norms, queries) towards 1e-5; "
        "mmdg keeps them at 0 as intended. Official: `keep_zero=False` on the `AnnealedWeightDecay` scheduler.",
    ('zero weight decay for', _SORA_ZERO_DECAY):
        'The extra names (embeddings, tokens, layer scales) are frozen in every recipe but full fine-tuning, '
        "where the official run decays `cls_token` by 0.05 and mmdg does not (a token is not a weight to "
        "shrink). Official: remove `cls_token` from `optim_wrapper.paramwise_cfg.zero_decay_keys`.",
    ('position grid at other input sizes', 'none (fixed input size)'):
        "The official EVA02 backbone adds its position grid as it is and so runs at the training size only "
        "(its sliding windows); mmdg's EVA02 accepts any size through timm's resampling. Same tokens at 512.",
    ('train sources', 'Cityscapes (image list train_1_16_v1.txt)'):
        'The official 1/16 list of Cityscapes images is not published; mmdg reads its own list file '
        '(docs/datasets.md: how to draw one), so numbers depend on which 186 images it holds.',
}

def model_key(recipe: str) -> str:
    """The key of ``recipe``'s official model config in :data:`OFFICIAL_MODELS`."""
    src = OFFICIAL[recipe]['source']
    if recipe == 'gta5-to-cbm rein-eva02':  # no config of its own: the DINOv2-L recipe's head
        return 'rein:configs/dinov2/rein_dinov2_mask2former_512x512_bs1x4.py'
    return 'rein:' + src.split(': ', 1)[1] if src.startswith('w1oves/Rein: ') else 'soma:' + src


def recipe_of(name: str) -> Optional[str]:
    """The official recipe (a key of ``OFFICIAL``) an mmdg config name follows."""
    method = name.split('/')[0]
    if method == 'rein' and '_gta5-to-cbm-512' in name:
        return 'gta5-to-cbm rein-eva02' if '_eva02-l_' in name else 'gta5-to-cbm rein'
    for proto in ('cityscapes-to-acdc-512', 'cityscapes-to-acdc-1024'):
        if method == 'rein' and f'_{proto}' in name:
            return f'{proto} rein'
    for proto in ('gta5+synthia+urbansyn-to-cbm-512', 'gta5+synthia+urbansyn-to-cbm-1024', 'cityscapes-1of16-to-cbm',
                  'gta5+synthia-to-cbm', 'cityscapes-to-bm', 'cityscapes-to-acdc-512', 'cityscapes-to-acdc-1024',
                  'gta5-to-cbm'):
        if f'_{proto}' in name or f'-{proto}' in name:
            kind = method if method in ('full', 'frozen') and proto == 'gta5-to-cbm' else 'sora'
            return f'{proto} {kind}'
    return None


def is_counterpart(name: str) -> bool:
    """The config is the official recipe itself (same method, DINOv2-L), not another method on its recipe."""
    method = name.split('/')[0]
    if method == 'rein':  # both official Rein models, DINOv2-L and EVA02-L
        return '_dinov2-l_' in name or '_eva02-l_' in name
    return '_dinov2-l_' in name and method in ('sora', 'full', 'frozen')


def _values(setting: str, ours, theirs):
    """``(row name, ours, theirs)`` per value: a setting made of several values (a dict) gives one row each."""
    if not isinstance(theirs, dict):
        yield setting, ours, theirs
        return
    for key in [*theirs, *(k for k in ours if k not in theirs)]:
        yield f'{setting}: {key}', ours.get(key, '(absent)'), theirs.get(key, '(absent)')


def compare_settings(settings, official: dict, cfg, exempt, documented) -> List[dict]:
    """One row per value of ``settings`` (``(name, extract, kind)``): ours, the official value and a status:
    ``exempt(kind)`` (a status such as 'method' when the row does not apply to this config), else 'same',
    'documented' (the official value is a key of ``documented``) or 'UNDOCUMENTED'."""
    rows = []
    for setting, extract, kind in settings:
        for row, ours, theirs in _values(setting, extract(cfg), official[setting]):
            status = exempt(kind) or ('same' if ours == theirs else
                                      'documented' if any((row, theirs) in d for d in documented) else 'UNDOCUMENTED')
            rows.append(dict(setting=row, official=theirs, ours=ours, status=status))
    return rows


#: What a sharded (``*_fsdp.py``) config changes on purpose: the recipe's total batch over more GPUs, no EMA.
SHARDED_ROWS = ('GPUs', 'batch per GPU', 'EMA')


def compare(name: str, cfg) -> List[dict]:
    """The segmentation config ``name`` against its official recipe, value by value."""
    rows = compare_settings(SETTINGS, OFFICIAL[recipe_of(name)]['values'], cfg,
                            lambda specific: 'method' if specific and not is_counterpart(name) else None,
                            (DOCUMENTED,))
    if name.endswith('_fsdp.py'):
        by = {r['setting']: r for r in rows}
        total = [int(by[k][side]) for side in ('ours', 'official') for k in ('GPUs', 'batch per GPU')]
        if total[0] * total[1] == total[2] * total[3]:  # the same total batch, or the rows stay UNDOCUMENTED
            for r in rows:
                if r['setting'] in SHARDED_ROWS and r['status'] == 'UNDOCUMENTED':
                    r['status'] = 'sharded'
    return rows


def undocumented_rows(configs: Dict[str, Config], rows_of) -> List[str]:
    """``name: setting: official ..., mmdg ...`` for every UNDOCUMENTED row of ``rows_of(name, cfg)``."""
    return [f"{name}: {r['setting']}: official {r['official']!r}, mmdg {r['ours']!r}"
            for name, cfg in configs.items() for r in rows_of(name, cfg) if r['status'] == 'UNDOCUMENTED']


def config_table(path: str, rows: List[dict], mark: Dict[str, str]) -> List[str]:
    """The markdown table of one config's rows ('=' where mmdg has the official value)."""
    out = [f'### `{path}`', '', '| setting | official | mmdg | |', '|---|---|---|---|']
    for r in rows:
        ours = r['ours'] if r['ours'] != r['official'] else '='
        out.append(f"| {r['setting']} | {r['official']} | {ours} | {mark[r['status']]} |")
    return out + ['']


def load_all(config_dir: str = CONFIG_DIR) -> Dict[str, Config]:
    paths = sorted(glob.glob(osp.join(config_dir, '*', '*.py')))
    return {osp.relpath(p, config_dir): Config.fromfile(p, import_custom_modules=False) for p in paths}


def render(configs: Dict[str, Config]) -> str:
    mark = dict(same='✓', documented='differs on purpose (top of page)', method='this method',
                sharded='sharded engine (top of page)', UNDOCUMENTED='**UNDOCUMENTED**')
    out = ['# Parity with the official SoRA recipes', '',
           'Generated by `python tools/parity.py` from the resolved configs; `tests/test_parity.py` fails when a',
           'config drifts from this table or differs from the official recipe without a documented reason.',
           'Official values: the public SoRA/SoMA repository (ysj9909/SoMA), file named per recipe. Settings',
           'that do not change results (worker counts, logging) are not compared. No recipe selects a',
           'checkpoint by its score on the unseen target domains: the result is the final iteration\'s.', '',
           '## Where mmdg differs on purpose', '']
    for (setting, official), why in DOCUMENTED.items():
        out.append(f'- **{setting}** (official: {official}): {why}')
    out += ['', 'Also: the official full fine-tuning config names a segmentor class (`FrozenNSEncoderDecoder`)',
            'that the public repository does not contain; its comment says norms, layer scales and the',
            'patch / position embeddings stay frozen, which is what the "official" column shows and what',
            'mmdg does. LoRA, PiSSA, ALoRE, HTA, CLoRA and the EVA02-L configs have no official config: they',
            'run the SoRA recipe, and only their method rows differ.',
            'The Rein configs follow the official Rein recipe instead (the public Rein repository, w1oves/Rein);',
            'its EVA02-L model file has no training config of its own, so the EVA02-L row is the DINOv2-L',
            'recipe with that model.',
            'The DINOv3 configs (`*_dinov3-l_*`, `*_dinov3-7b_*`) are mmdg\'s own settings: neither the official',
            'SoRA/SoMA code nor Rein supports DINOv3, so they have no official counterpart; they run the recipe',
            'they are listed under, and their backbone and method rows say what differs.',
            'The sharded configs (`*_fsdp.py`, FSDP2 over several GPUs) keep the recipe\'s total batch over more',
            'GPUs and train without EMA (mmengine\'s averaged copy is not sharded); rows marked "sharded engine".', '']
    by_recipe: Dict[str, List[str]] = {}
    for name in configs:
        by_recipe.setdefault(recipe_of(name), []).append(name)
    for recipe, names in by_recipe.items():
        out += [f'## {recipe} — official `{OFFICIAL[recipe]["source"]}`', '']
        for name in names:
            out += config_table(f'configs/dg_seg/{name}', compare(name, configs[name]), mark)
        shown = next((n for n in names if is_counterpart(n)), names[0])
        key = model_key(recipe)
        out += model_table(recipe, key, f'configs/dg_seg/{shown}', seg_model_rows(shown, configs[shown]),
                           layout_paths(official_model(key), SEG_MODEL_RULES), len(names) - 1)
    return '\n'.join(out).rstrip() + '\n'


#: Model settings that follow the backbone (its width): compared for the official backbone only.
BACKBONE_DEPENDENT = ('decode_head.in_channels',)


def seg_model_rows(name: str, cfg) -> List[dict]:
    rows = model_rows(official_model(model_key(recipe_of(name))), cfg, SEG_MODEL_RULES)
    for r in rows:
        if r['setting'] in BACKBONE_DEPENDENT and r['status'] != 'same' and not is_counterpart(name):
            r['status'] = 'method'
    return rows


def undocumented(configs: Dict[str, Config]) -> List[str]:
    return undocumented_rows(configs, lambda name, cfg: compare(name, cfg) + seg_model_rows(name, cfg))


def model_table(title: str, official_key: str, name: str, rows: List[dict], layout: List[str], others: int) -> List[str]:
    mark = dict(same='✓', documented='differs on purpose', protocol='this protocol', method='this backbone',
                UNDOCUMENTED='**UNDOCUMENTED**')
    out = [f'#### {title}: model settings, value by value', '',
           f'Every setting of the official model config but its backbone (`{official_key.split(":", 1)[1]}`, read '
           f'from the file itself), against `{name}`' + (f' (and the {others} other config(s) above, checked '
           'the same way)' if others else '') + (". Not rows: the official config's module layout "
                                                f'({", ".join(f"`{p}`" for p in layout)}).' if layout else '.'), '',
           '| setting | official | mmdg | |', '|---|---|---|---|']
    for r in rows:
        ours = '=' if r['status'] == 'same' else f"`{r['ours']}`"
        out.append(f"| `{r['setting']}` | `{r['official']}` | {ours} | {mark[r['status']]} |")
    return out + ['']

# --------------------------------------------------------------------------------------------------
# Detection (configs/dg_det): the published Diverse Weather recipe (SoRA + Co-DINO, DINOv2-L)
DET_CONFIG_DIR = osp.join(REPO, 'configs', 'dg_det')


def _det_pipeline(pipeline) -> List[dict]:
    """The pipeline with mmdet's scope prefix dropped, so that types read as in the official configs."""
    return [dict(t, type=t['type'].split('.')[-1]) for t in pipeline]


def _det_train_pipeline(cfg):
    return _det_pipeline(cfg.train_dataloader.dataset.pipeline)


def _pad_text(t) -> str:
    return f', padded to {t["size"][0]}x{t["size"][1]} ({t["pad_val"]["img"][0]})' if t else ''


def det_train_source(cfg):
    d = cfg.train_dataloader.dataset
    return f'{d.domain} (image list {d.split}.txt)'


def det_train_resize(cfg):
    return _resize_text(_first(_det_train_pipeline(cfg), 'RandomResize', 'Resize'))


def det_train_crop(cfg):
    t = _first(_det_train_pipeline(cfg), 'RandomCrop')
    return {'size': f'{t["crop_size"][0]}x{t["crop_size"][1]}', 'crop type': t.get('crop_type', 'absolute'),
            'crops without boxes': 'kept' if t.get('allow_negative_crop') else 'dropped'}


def det_augment(cfg):
    p = _det_train_pipeline(cfg)
    names = {'RandomFlip': lambda t: f'flip {t["prob"]}', 'Pad': lambda t: _pad_text(t)[2:],
             'PhotoMetricDistortion': lambda t: 'photometric distortion'}
    return ', '.join(names[t['type']](t) for t in p if t['type'] in names) or 'none'


def det_empty_images(cfg):
    f = cfg.train_dataloader.dataset.get('filter_cfg') or {}
    return 'dropped' if f.get('filter_empty_gt', True) else 'kept'


def det_backbone_decay(cfg):
    keys = cfg.optim_wrapper.get('paramwise_cfg', {}).get('custom_keys', {})
    return f'x{keys["backbone"].get("decay_mult", 1.0):g}' if 'backbone' in keys else 'x1'


def det_lr_schedule(cfg):
    s = _schedulers(cfg, 'MultiStepLR')
    if not s:
        return 'constant'
    s = s[0]
    steps = ', '.join(str(s.get('begin', 0) + m) for m in s.milestones)  # milestones count from begin
    return f'x{s.gamma:g} at iterations {steps}'


def det_grad_clip(cfg):
    c = cfg.optim_wrapper.get('clip_grad')
    return f'max norm {c.max_norm:g}' if c else 'none'


def det_test_resize(cfg):
    d = next(iter(cfg.val_dataloader.dataset.domains.values()))
    p = _det_pipeline(d['pipeline'])
    return _resize_text(_first(p, 'Resize')) + _pad_text(_first(p, 'Pad'))


def det_targets(cfg):
    return '; '.join(f'{n} {d["split"]}' for n, d in cfg.val_dataloader.dataset.domains.items())


def det_metric(cfg):
    ev = cfg.val_evaluator
    return f'VOC mAP@{ev.iou_thrs:g} ({ev.eval_mode}) per domain'


def det_detector(cfg):
    return cfg.model.type


def det_reference_eps(cfg):
    return f"{cfg.model.get('bbox_head', {}).get('reference_eps', 1e-5):g}"


def det_sync_cls_avg(cfg):
    return str(cfg.model.get('bbox_head', {}).get('sync_cls_avg_factor', False))


def det_transformer_init(cfg):
    return dict(official="PyTorch defaults (the transformer's init_weights never runs)",
                mmdet='xavier-uniform (mmdet DINO)')[cfg.model.get('transformer_init', 'mmdet')]


def det_aux_head_init(cfg):
    return "each head's own init_weights" if cfg.model.type == 'CoDINO' else 'n/a'




def det_backbone(cfg):
    bb = cfg.model.backbone
    strides = tuple(bb.get('out_strides') or ())
    extra = cfg.model.neck.get('num_outs', len(bb.out_indices)) - len(bb.out_indices)
    return dict(_vit(bb.arch, bb.img_size, bb.out_indices, bb.patch_size), strides=str(strides),
                **{'extra neck levels': str(max(extra, 0))})


#: (setting, extractor, kind): kind 'method' rows are compared for the official method only (SoRA on
#: DINOv2-L), 'detector' rows for Co-DINO only, 'protocol' rows for Diverse Weather only; the rest for all.
DET_SETTINGS = [
    ('detector', det_detector, 'detector'),
    ('head: inverse_sigmoid eps of the reference points', det_reference_eps, 'detector'),
    ('head: sync_cls_avg_factor', det_sync_cls_avg, 'detector'),
    ('transformer initialisation', det_transformer_init, 'detector'),
    ('auxiliary heads initialisation', det_aux_head_init, 'detector'),
    ('backbone', det_backbone, 'detector'),
    ('patch kernel 14 -> 16', patch_resample, ''),
    ('position grid at other input sizes', pos_resample, ''),
    ('train source', det_train_source, 'protocol'),
    ('train resize', det_train_resize, ''),
    ('train crop', det_train_crop, ''),
    ('augmentation', det_augment, ''),
    ('images without boxes', det_empty_images, ''),
    ('batch per GPU', batch_per_gpu, ''),
    ('GPUs', gpus, ''),
    ('iterations', iterations, ''),
    ('optimizer', optimizer, ''),
    ('backbone lr', backbone_lr, ''),
    ('backbone weight decay', det_backbone_decay, ''),
    ('grad clip', det_grad_clip, ''),
    ('lr warm-up', warmup, ''),
    ('lr schedule', det_lr_schedule, ''),
    ('weight decay schedule', decay_schedule, ''),
    ('zero-decay groups while annealing', zero_decay_annealed, ''),
    ('zero weight decay for', zero_decay, ''),
    ('test resize', det_test_resize, ''),
    ('validation targets', det_targets, 'protocol'),
    ('metric', det_metric, ''),
    ('mean/mAP over', mean_over, 'protocol'),
    ('validation interval', val_interval, ''),
    ('seed', seed, ''),
    ('checkpoints', checkpoints, ''),
    ('method', method, 'method'),
    ('frozen in the backbone', frozen_in_backbone, 'method'),
    ('SVD of', svd_source, 'method'),
]
_DWD_TARGETS = ('daytime_clear test; night_sunny train; dusk_rainy train; night_rainy train; daytime_foggy train')
DET_OFFICIAL = dict(
    source='DGOD/configs/sora/sora_dinov2-L_codetr_dg.py',
    values={
        # the model config's own settings are the rows of the "model settings" table (from the file itself);
        # these are the code's: co_dino_head.py (forward, forward_aux: eps=1e-3), mmdet DETRHead's default
        # (sync_cls_avg_factor not set), codetr.py (heads' init_weights called, the transformer's never)
        'detector': 'CoDINO', 'head: inverse_sigmoid eps of the reference points': '0.001',
        'head: sync_cls_avg_factor': 'False',
        'transformer initialisation': "PyTorch defaults (the transformer's init_weights never runs)",
        'auxiliary heads initialisation': "each head's own init_weights",
        'backbone': dict(_vit(size=1024), strides='(4, 8, 16, 32)', **{'extra neck levels': '1'}),
        'patch kernel 14 -> 16': 'bicubic', 'position grid at other input sizes': _POS_TEXT['dinov2'],
        'train source': 'daytime_clear (image list train.txt)', 'train resize': 'random x0.1-2.0 of 1024x1024',
        'train crop': {'size': '1024x1024', 'crop type': 'absolute_range', 'crops without boxes': 'kept'},
        'augmentation': 'flip 0.5, padded to 1024x1024 (114), photometric distortion',
        'images without boxes': 'kept', 'batch per GPU': '2', 'GPUs': '4', 'iterations': '40000',
        'optimizer': _optim(2e-4),
        'backbone lr': 'x0.5', 'backbone weight decay': 'x0.2', 'grad clip': 'max norm 35',
        'lr warm-up': 'linear from 0.01 x lr over 1500 iterations', 'lr schedule': 'x0.1 at iterations 25500, 33500',
        'weight decay schedule': 'cosine to 1e-05 over iterations 0-40000',
        'zero-decay groups while annealing': 'rise from 0 to 1e-05',
        'zero weight decay for': 'norm layers; names containing norm, query_embed, level_embed',
        'test resize': 'fit 1024x1024, padded to 1024x1024 (114)', 'validation targets': _DWD_TARGETS,
        'metric': 'VOC mAP@0.5 (11points) per domain',
        'mean/mAP over': 'daytime_clear, daytime_foggy, dusk_rainy, night_rainy, night_sunny',
        'validation interval': '4000', 'seed': 'not set',
        'checkpoints': _ckpt(4000, 8),
        'method': 'SoRA r 16 alpha 16, blocks 8-23', 'frozen in the backbone': 'blocks 0-7; every weight outside the adapters',
        'SVD of': 'random init, pre-trained weights loaded over the residual'})
#: Detection differences on purpose (the shared ones, e.g. the annealing of zero-decay groups and the SVD
#: source, are in ``DOCUMENTED``).
DET_DOCUMENTED = {
    ('seed', 'not set'):
        'The official detection runtime sets no seed (each run draws its own); mmdg fixes seed 0 so that a run '
        'can be repeated. Official: `randomness = dict(seed=None)`.',
}


def det_compare(name: str, cfg) -> List[dict]:
    """The detection config ``name`` against the published recipe: method, detector and protocol rows apply
    only to the configs that share them."""
    applies = dict(method=name.startswith('sora/') and '_dinov2-l_' in name, detector=cfg.model.type == 'CoDINO',
                   protocol='cityscapes' not in name)
    return compare_settings(DET_SETTINGS, DET_OFFICIAL['values'], cfg,
                            lambda kind: kind if kind in applies and not applies[kind] else None,
                            (DET_DOCUMENTED, DOCUMENTED))


def det_load_all() -> Dict[str, Config]:
    return load_all(DET_CONFIG_DIR)


def det_render(configs: Dict[str, Config]) -> str:
    mark = dict(same='✓', documented='differs on purpose (top of section)', method='this method',
                detector='lighter detector', protocol='this protocol', UNDOCUMENTED='**UNDOCUMENTED**')
    out = ['', f'# Detection — official `{DET_OFFICIAL["source"]}`', '',
           'The published Diverse Weather recipe (SoRA + Co-DINO on DINOv2-L). Every detection config runs it:',
           'LoRA, full fine-tuning and the frozen backbone differ in their method rows only, the DINO and',
           'Faster R-CNN configs (lighter detectors) in their detector rows, Cityscapes -> Foggy Cityscapes',
           '(no official config) in its protocol rows.', '',
           '## Where mmdg detection differs on purpose', '']
    for (setting, official), why in DET_DOCUMENTED.items():
        out.append(f'- **{setting}** (official: {official}): {why}')
    out.append('- **zero-decay groups while annealing**, **SVD of**: as for segmentation (top of page).')
    out.append('')
    for name in configs:
        out += config_table(f'configs/dg_det/{name}', det_compare(name, configs[name]), mark)
    codino = [n for n in configs if configs[n].model.type == 'CoDINO']
    shown = next((n for n in codino if n.startswith('sora/') and '_dwd-' in n), codino[0])
    out += model_table('Co-DINO', DET_MODEL_KEY, f'configs/dg_det/{shown}', det_model_rows(shown, configs[shown]),
                       layout_paths(official_model(DET_MODEL_KEY), DET_MODEL_RULES), len(codino) - 1)
    return '\n'.join(out).rstrip() + '\n'


DET_MODEL_KEY = 'soma:' + DET_OFFICIAL['source']


def det_model_rows(name: str, cfg) -> List[dict]:
    """The Co-DINO configs against every setting of the official detector config (lighter detectors: none);
    another protocol's class count is that protocol's, not a difference."""
    if cfg.model.type != 'CoDINO':
        return []
    rows = model_rows(official_model(DET_MODEL_KEY), cfg, DET_MODEL_RULES)
    for r in rows:
        if 'cityscapes' in name and r['setting'].split(' ')[0].endswith('num_classes') and r['status'] != 'same':
            r['status'] = 'protocol'
    return rows


def det_undocumented(configs: Dict[str, Config]) -> List[str]:
    return undocumented_rows(configs, lambda name, cfg: det_compare(name, cfg) + det_model_rows(name, cfg))



def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--check', action='store_true', help='fail if docs/parity.md is stale or a difference '
                                                             'is undocumented; write nothing')
    args = parser.parse_args(argv)
    configs = load_all()
    missing = [n for n in configs if recipe_of(n) is None]
    if missing:
        sys.exit(f'error: no official recipe known for {missing}; add it to mmdg/utils/parity.py')
    det_configs = det_load_all()  # the detection section
    text = render(configs) + det_render(det_configs)
    problems = undocumented(configs) + det_undocumented(det_configs)
    if args.check:
        if not osp.isfile(DOC) or open(DOC).read() != text:
            problems.append('docs/parity.md is stale: run python tools/parity.py')
        if problems:
            sys.exit('error: ' + '\n  '.join(problems))
        print(f'parity: {len(configs) + len(det_configs)} configs match their official recipes or document why not')
        return
    with atomic_open(DOC, 'w') as f:
        f.write(text)
    print(f'wrote {DOC}' + (f' with {len(problems)} undocumented difference(s):\n  ' + '\n  '.join(problems)
                            if problems else ''))

