"""No recipe selects, keeps or reports a model by its score on the unseen target domains.

Every DG segmentation and detection recipe's resolved checkpoint hook saves at the official interval,
keeps the official number of files and has no `save_best`: the result is the final iteration's."""
import glob
import os.path as osp
import re

import pytest
from mmengine.config import Config

from conftest import REPO

CONFIGS = sorted(glob.glob(osp.join(REPO, 'configs', 'dg_seg', '*', '*.py')) +
                 glob.glob(osp.join(REPO, 'configs', 'dg_det', '*', '*.py')))

#: (interval, kept) of the official recipe each config reproduces (SoMA configs/sora, fft_vfms, frozen_vfms,
#: DGOD/configs/sora; Rein configs/dinov2*), by a piece of the config name.
OFFICIAL_POLICY = [('frozen_', 'gta5-to-cbm', (10000, 4)), ('rein_', '', (4000, 3)),
                   ('', 'cityscapes-1of16', (400, 7)), ('', 'cityscapes-to-acdc', (4000, 8)),
                   ('', 'dg_det', (4000, 8)), ('', '', (4000, 6))]


def _official(path):
    name = osp.relpath(path, osp.join(REPO, 'configs'))
    return next(p for method, proto, p in OFFICIAL_POLICY if osp.basename(name).startswith(method) and proto in name)


@pytest.mark.parametrize('path', CONFIGS, ids=lambda p: osp.relpath(p, osp.join(REPO, 'configs')))
def test_checkpoint_hook_keeps_the_final_model_and_selects_nothing(path):
    cfg = Config.fromfile(path, import_custom_modules=False)
    hook = cfg.default_hooks.checkpoint
    assert not hook.get('save_best'), f'{path}: selects a checkpoint by {hook.save_best}'
    assert hook.get('save_last', True) and not hook.get('by_epoch', False)
    assert (hook.interval, hook.max_keep_ckpts) == _official(path)
    assert cfg.train_cfg.max_iters % hook.interval == 0  # the final iteration is one of the kept files


def test_no_config_or_tool_offers_target_selection():
    hits = []
    for path in glob.glob(osp.join(REPO, 'configs', '**', '*.py'), recursive=True) + \
            glob.glob(osp.join(REPO, 'tools', '**', '*.py'), recursive=True):
        code = [line.split('#')[0] for line in open(path)]  # comments may say why there is none
        if any(re.search(r'save_best\s*=|best_mean_', line) for line in code):
            hits.append(osp.relpath(path, REPO))
    assert not hits, hits
