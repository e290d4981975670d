"""Turn a released SoMA checkpoint (official SoRA code, "adapter & head" file) into an mmdg checkpoint.

    python tools/convert/soma.py checkpoints/dinov2_vitl14_pretrain.pth \
        checkpoints/soma_dinov2-L_g2cbm_best.pth checkpoints/soma_dinov2-l_g2cbm_mmdg.pth [--crop 512]

DINOV2_PTH is Meta's ``dinov2_vitl14_pretrain.pth``; its patch kernel and position grid are resized with
plain bicubic interpolation, as the official conversion does (the released models were trained on those
tokens). The official converted file or a ``tools/convert/vit.py --patch-resample bicubic`` output for
the same crop size are accepted as well. SOMA_PTH holds the LoRA factors, the
biases and the Mask2Former head; a released detection checkpoint (DINOv2-L SoRA + Co-DINO, recognised by
its ``query_head.*`` tensors) holds the backbone and the whole detector, and converts for
``configs/dg_det/sora/sora_dinov2-l_codino_40k_dwd-1024.py`` by default (the official Co-DINO names are
mapped onto mmdg's CoDINO, which follows mmdet's DINO layout). The output is a full state dict of the mmdg SoRA segmentor built from
``--config`` (default: the GTA5 -> C/B/M 512 config, or the Cityscapes -> ACDC 1024 config with
``--crop 1024``), for ``tools/test.py`` and ``tools/cross_domain_eval.py`` with that config.

Weights: by default the EMA-averaged ones, which the official evaluation runs (mmengine's EMAHook saves
them under ``state_dict`` and moves the raw training weights to ``ema_state_dict``); ``--no-ema`` takes
the raw ones. A file for another model, crop size or rank stops with the keys and shapes that differ.
"""
import argparse
import glob
import os
import os.path as osp
import sys

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, REPO)

#: Default config per crop size (file name patterns, so that renamed schedules still match).
DEFAULT_CONFIGS = {
    512: 'configs/dg_seg/sora/sora_dinov2-l_mask2former_*gta5-to-cbm-512*.py',
    1024: 'configs/dg_seg/sora/sora_dinov2-l_mask2former_*cityscapes-to-acdc-1024*.py',
}


#: Default config of the released detection checkpoint (DINOv2-L SoRA + Co-DINO, Diverse Weather).
DEFAULT_DET_CONFIG = 'configs/dg_det/sora/sora_dinov2-l_codino_*dwd-1024*.py'


def default_det_config() -> str:
    found = sorted(glob.glob(osp.join(REPO, DEFAULT_DET_CONFIG)))
    if not found:
        raise SystemExit(f'no default detection config ({DEFAULT_DET_CONFIG}); pass --config')
    return found[0]


def default_config(crop: int) -> str:
    found = sorted(glob.glob(osp.join(REPO, DEFAULT_CONFIGS[crop])))
    if not found:
        raise SystemExit(f'no default config for --crop {crop} ({DEFAULT_CONFIGS[crop]}); pass --config')
    return found[0]


def config_crop(cfg) -> int:
    size = cfg.model.backbone.get('img_size', 512)
    h, w = (size, size) if isinstance(size, int) else tuple(size)
    if h != w:
        raise SystemExit(f'the config builds a {h}x{w} backbone; the released SoMA models use square crops')
    return h


def main(argv=None):
    from mmengine.config import DictAction
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('dinov2', metavar='DINOV2_PTH', help="Meta's dinov2_vitl14_pretrain.pth")
    parser.add_argument('soma', metavar='SOMA_PTH', help='released SoMA adapter & head checkpoint')
    parser.add_argument('out', metavar='OUT_PTH', help='output mmdg checkpoint')
    parser.add_argument('--config', help='mmdg SoRA config the checkpoint is for (default: see above)')
    parser.add_argument('--crop', type=int, choices=sorted(DEFAULT_CONFIGS),
                        help='crop size the SoMA model was trained with (default: the config\'s img_size); '
                             'must match the config')
    ema = parser.add_mutually_exclusive_group()
    ema.add_argument('--ema', dest='ema', action='store_true', default=None,
                     help='require the EMA-averaged weights (the default when the file has them)')
    ema.add_argument('--no-ema', dest='ema', action='store_false', help='take the raw training weights')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, help='override config values')
    args = parser.parse_args(argv)

    for path in (args.dinov2, args.soma):
        if not osp.isfile(path):
            raise SystemExit(f'{path} does not exist')
        if osp.abspath(path) == osp.abspath(args.out):
            raise SystemExit('refusing to overwrite an input checkpoint; choose another output path')

    from mmdg.utils.tool_config import input_errors_as_messages
    with input_errors_as_messages():
        convert(args)


def build_on_meta(cfg):
    """The config's model on the meta device: its state-dict layout without weights, SVDs or memory (a
    ViT-L SoRA segmentor takes minutes to build on a CPU, for tensors that would all be replaced)."""
    import copy

    import torch
    from mmengine.registry import init_default_scope
    init_default_scope(cfg.get('default_scope', 'mmdg'))
    from mmdg.registry import MODELS
    model_cfg = copy.deepcopy(cfg.model)
    model_cfg.backbone.pretrained = None
    with torch.device('meta'):
        return MODELS.build(model_cfg)


def convert(args):
    import torch
    from mmengine.config import Config

    from mmdg.models.backbones.soma_weights import (codino_soma_to_mmdg, is_codino_checkpoint, select_soma_state,
                                                    soma_to_mmdg)
    from mmdg.utils.checkpoint import atomic_save, safe_torch_load, unwrap_state_dict

    soma, which = select_soma_state(safe_torch_load(args.soma), args.ema, source=args.soma)
    det = is_codino_checkpoint(soma)  # the DGOD release: DINOv2-L SoRA + Co-DINO
    config = args.config or (default_det_config() if det else default_config(args.crop or 512))
    if not osp.isfile(config):
        raise SystemExit(f'config file {config} does not exist')
    cfg = Config.fromfile(config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    crop = config_crop(cfg)
    if args.crop is not None and args.crop != crop:
        raise SystemExit(f'--crop {args.crop}, but {config} builds a model for {crop}x{crop} crops '
                         f'(model.backbone.img_size={crop}): pass the config of the {args.crop} recipe with --config')
    adapter = cfg.model.backbone.get('adapter') or {}
    if str(adapter.get('type', '')).lower() != 'sora':
        raise SystemExit(f'{config} has no SoRA adapter (model.backbone.adapter={adapter or None}); '
                         'the released SoMA models need a SoRA config')

    if det != (cfg.model.type == 'CoDINO'):
        raise SystemExit(f'{args.soma} is a {"detection (Co-DINO)" if det else "segmentation"} checkpoint, but '
                         f'{config} builds a {cfg.model.type}: pass a '
                         f'{"configs/dg_det/*codino*" if det else "configs/dg_seg/sora/*"} config with --config')
    dinov2 = safe_torch_load(args.dinov2)
    made = dinov2.get('meta', {}) if isinstance(dinov2, dict) else {}
    if isinstance(made, dict) and 'patch_size' in made and made.get('patch_resample', 'pinv') != 'bicubic':
        # a tools/convert/vit.py output (files made before --patch-resample existed used 'pinv')
        raise SystemExit(f'{args.dinov2} was converted with --patch-resample {made.get("patch_resample", "pinv")}; '
                         'the released SoMA models need the official bicubic resampling: pass Meta\'s original '
                         'checkpoint (or a tools/convert/vit.py output made with --patch-resample bicubic)')
    dinov2 = unwrap_state_dict(dinov2, args.dinov2)
    model = build_on_meta(cfg)
    state = (codino_soma_to_mmdg if det else soma_to_mmdg)(dinov2, soma, model, soma_source=args.soma,
                                                            dinov2_source=args.dinov2)
    own = model.state_dict()
    model.load_state_dict({k: v.to(own[k].dtype).contiguous() for k, v in state.items()}, strict=True, assign=True)
    name = osp.relpath(osp.abspath(config), REPO)
    name = config if name.startswith('..') else name
    meta = dict(converted_from=dict(dinov2=osp.basename(args.dinov2), soma=osp.basename(args.soma),
                                    weights=which, config=name, crop=crop, patch_resample='bicubic'))
    os.makedirs(osp.dirname(osp.abspath(args.out)) or '.', exist_ok=True)
    atomic_save(dict(state_dict=model.state_dict(), meta=meta), args.out)
    adapted = sum(k.endswith('.lora_A') for k in state)
    head = sum(not k.startswith('backbone.') for k in state) if det else sum(k.startswith('decode_head.') for k in state)
    n = sum(v.numel() for v in state.values() if torch.is_tensor(v))
    print(f'wrote {args.out}: {n / 1e6:.1f}M values for {name} ({crop}x{crop} crops); {which}; '
          f'{adapted} SoRA layers, {head} head tensors')


if __name__ == '__main__':
    main()
