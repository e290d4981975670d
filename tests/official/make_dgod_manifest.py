"""Key manifest of the OFFICIAL SoMA DGOD detector (DINOv2-L SoRA + Co-DINO) and of its released file.

    python tests/official/make_dgod_manifest.py /path/to/SoMA-checkout tests/official/soma_dgod_manifest.json

Builds ``DGOD/configs/sora/sora_dinov2-L_codetr_dg.py`` with the official code (the vendored
DGOD/mmdet, DGOD/projects/CO_DETR, DGOD/rein, registered by ``import rein`` as DGOD/tools/train.py does),
without allocating the backbone: while ``DinoVisionTransformer`` and ``SoraModel`` are constructed, every
parameter is moved to the meta device as it is registered (the DINOv2 constructor calls ``.item()`` on a
``torch.linspace``, so a global ``torch.device('meta')`` cannot be used, and ``CoDETR.__init__`` calls the
heads' ``init_weights``, whose mmengine bookkeeping reads values, so the ~60M-value heads stay on the CPU). The "released" part applies ``filter_keys`` of ``tools/extract_soma_dgod_weights.py`` (imported
from the checkout, not copied) to the model's state-dict names.

Only workarounds (nothing in the checkout is edited): where not installed, ``peft`` (imported by
DGOD/rein/peft/sora.py for ``gather_params_ctx``) is replaced in ``sys.modules`` by a stub whose
``gather_params_ctx`` is a no-op context manager, and ``einops`` (imported at import time by
DGOD/rein/models/backbones/dino_layers/efficient_attention.py, a module this model does not use) by a stub.
"""
import contextlib
import importlib.util
import json
import os.path as osp
import sys

import torch
import torch.nn as nn

from make_seg_manifest import stub_missing  # this folder's: the same stubs for every official model


@contextlib.contextmanager
def params_on_meta():
    """Like accelerate's init_empty_weights(include_buffers=False)."""
    old = nn.Module.register_parameter

    def register(module, name, param):
        old(module, name, param)
        if param is not None and param.device.type != 'meta':
            p = module._parameters[name]
            module._parameters[name] = type(p)(p.to('meta'), requires_grad=p.requires_grad)
    nn.Module.register_parameter = register
    try:
        yield
    finally:
        nn.Module.register_parameter = old


def main(root, out):
    root = osp.abspath(root)
    dgod = osp.join(root, 'DGOD')
    sys.path[:0] = [dgod, root]  # DGOD first: its mmdet / rein / projects, as DGOD/tools/train.py runs
    stubbed = stub_missing('dgod')
    from mmengine.config import Config
    from mmengine.registry import init_default_scope
    import mmdet
    assert osp.dirname(mmdet.__file__) == osp.join(dgod, 'mmdet'), mmdet.__file__
    import rein  # noqa: F401  (registers DGVOCMetric, PEFTBackboneCoDETR, Co-DETR modules, ...)
    from mmdet.registry import MODELS

    cfg = Config.fromfile(osp.join(dgod, 'configs/sora/sora_dinov2-L_codetr_dg.py'))
    init_default_scope(cfg.get('default_scope', 'mmdet'))
    # the backbone (ViT-L + the SoRA wrapper's 96 SVDs) on meta; the heads are small and stay on the CPU,
    # since CoDETR.__init__ calls their init_weights, whose mmengine bookkeeping reads parameter values
    from rein.models.backbones.dino_v2 import DinoVisionTransformer
    from rein.peft.sora import SoraModel
    for cls in (DinoVisionTransformer, SoraModel):
        def init(self, *a, __orig=cls.__init__, **k):
            with params_on_meta():
                __orig(self, *a, **k)
        cls.__init__ = init
    model = MODELS.build(cfg.model)
    sd = model.state_dict()
    manifest = {'model': {k: list(v.shape) for k, v in sd.items()}}

    spec = importlib.util.spec_from_file_location('extract', osp.join(root, 'tools/extract_soma_dgod_weights.py'))
    extract = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(extract)
    target_modules = ['q', 'k', 'v', 'proj', 'fc1', 'fc2']  # the script's --target_modules default
    manifest['released'] = extract.filter_keys(manifest['model'], target_modules)
    manifest['info'] = dict(type=type(model).__name__, backbone=type(model.backbone).__name__,
                            stubbed=stubbed,
                            source='ysj9909/SoMA DGOD/configs/sora/sora_dinov2-L_codetr_dg.py, released subset by '
                                   'tools/extract_soma_dgod_weights.py filter_keys',
                            n_params=int(sum(p.numel() for p in model.parameters())),
                            n_released_values=int(sum(torch.Size(s).numel() for s in manifest['released'].values())))
    with open(out, 'w') as f:
        json.dump(manifest, f, indent=0)
    print(f"{out}: {len(manifest['model'])} model keys, {len(manifest['released'])} released keys; "
          f"{manifest['info']}")


if __name__ == '__main__':
    main(sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else 'soma_dgod_manifest.json')
