"""The demo backbone's pre-training: reproducible, on its own data, and the committed file is the one the
documented command makes (its hash is in docs/demo.md) and loads into the demo backbone."""
import json
import os
import re

import numpy as np
import pytest
import torch

from mmdg.apis.pretrain_demo import DEMO_BACKBONE, build_demo_vit, file_sha256, pretrain
from mmdg.datasets.synthetic import (CLASSES, COARSE_GROUPS, COARSE_OF_TRAIN_ID, ID, make_pretrain_sample,
                                     make_sample)

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_pretraining_data_is_a_pure_function_of_the_index_and_not_the_demo_data():
    img, groups = make_pretrain_sample(7)
    img2, groups2 = make_pretrain_sample(7)
    assert np.array_equal(img, img2) and np.array_equal(groups, groups2)
    assert img.shape == (128, 256, 3) and img.dtype == np.uint8 and groups.max() < len(COARSE_GROUPS)
    assert COARSE_GROUPS[COARSE_OF_TRAIN_ID[ID['bus']]] == 'vehicle' and len(COARSE_OF_TRAIN_ID) == len(CLASSES)
    assert COARSE_GROUPS[COARSE_OF_TRAIN_ID[ID['rider']]] == 'human'
    # the first pre-training scenes are none of the demo's scenes (another seed stream), and their colours vary
    demo = [make_sample('source', split, i)[1] for split in ('train', 'val') for i in range(20)]
    for i in range(20):
        groups = make_pretrain_sample(i)[1]
        assert not any(np.array_equal(groups, COARSE_OF_TRAIN_ID[d]) for d in demo)
    road = [make_pretrain_sample(i)[0][make_pretrain_sample(i)[1] == 0].mean(0) for i in range(6)]
    assert np.std(road, axis=0).mean() > 15, 'the flat class should not keep one colour across samples'


@pytest.mark.tool
def test_pretraining_is_reproducible_and_the_output_loads_into_the_demo_backbone(tmp_path):
    kw = dict(steps=3, batch_size=4, warmup=1, eval_images=8, progress=False)
    a = pretrain(str(tmp_path / 'a.safetensors'), workers=0, **kw)
    b = pretrain(str(tmp_path / 'b.safetensors'), workers=1, **kw)  # any worker count: the same data
    c = pretrain(str(tmp_path / 'c.safetensors'), workers=0, seed=1, **kw)
    assert a['sha256'] == b['sha256'] != c['sha256']
    assert a['log'][-1]['step'] == 3 and 0 <= a['held_out_coarse']['mIoU'] <= 100
    assert json.load(open(tmp_path / 'a.safetensors.json'))['sha256'] == file_sha256(str(tmp_path / 'a.safetensors'))
    from mmdg.convert.vit import load_vit_weights
    vit = load_vit_weights(build_demo_vit(), str(tmp_path / 'a.safetensors'))
    from safetensors.torch import load_file
    saved = load_file(str(tmp_path / 'a.safetensors'))
    assert saved['blocks.0.attn.qkv.weight'].dtype == torch.float16
    torch.testing.assert_close(vit.state_dict()['blocks.5.mlp.fc2.weight'], saved['blocks.5.mlp.fc2.weight'].float())


def test_pretraining_refuses_an_empty_run(tmp_path):
    with pytest.raises(ValueError, match='steps'):
        pretrain(str(tmp_path / 'x.safetensors'), steps=0, progress=False)


def test_the_committed_backbone_is_the_documented_one():
    from safetensors import safe_open
    assert os.path.isfile(DEMO_BACKBONE), 'the pre-trained demo backbone is committed under assets/'
    doc = open(os.path.join(REPO, 'docs', 'demo.md')).read()
    documented = re.search(r'\| sha256 \| `([0-9a-f]{64})`', doc)
    assert documented and documented.group(1) == file_sha256(DEMO_BACKBONE)
    with safe_open(DEMO_BACKBONE, 'pt') as f:
        meta = json.loads(f.metadata()['record'])
    record = json.load(open(DEMO_BACKBONE + '.json'))
    assert meta['command'] == record['command'] == 'tools/pretrain_demo_backbone.py'  # the defaults made it
    assert int(meta['seed']) == 0 and int(meta['steps']) == record['steps']
    # the defaults (the tool passes only the options given) are the recorded settings
    import inspect
    from mmdg.apis.pretrain_demo import pretrain
    defaults = {k: p.default for k, p in inspect.signature(pretrain).parameters.items()}
    for key in ('steps', 'batch_size', 'lr', 'weight_decay', 'warmup', 'seed'):
        assert defaults[key] == record[key], key
    assert record['train_minutes'] <= 30, 'pre-training must fit in 30 minutes on 2 CPU cores'


def test_the_committed_backbone_loads_as_it_is_under_either_resampling():
    """Its 8x16 position grid is the model's: neither resampling may touch it (bicubic used to refuse a
    non-square grid even when no resampling was needed; the detection demo's recipe uses bicubic)."""
    from safetensors.torch import load_file
    from mmdg.convert.vit import load_vit_weights
    saved = load_file(DEMO_BACKBONE)
    for resample in ('pinv', 'bicubic'):
        vit = load_vit_weights(build_demo_vit(), DEMO_BACKBONE, patch_resample=resample)
        torch.testing.assert_close(vit.pos_embed.detach(), saved['pos_embed'].float(), rtol=0, atol=0)
