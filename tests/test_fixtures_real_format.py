"""mmdg's data path on real-format files (../shared/fixtures); skipped in a user's clone."""
import os.path as osp

import numpy as np
import pytest
import torch
from mmengine.registry import init_default_scope

from mmdg.apis.demo import demo_config


@pytest.mark.tool
def test_real_cityscapes_frame_through_the_segmentor_and_per_domain_eval(fixtures_dir, tmp_path):
    init_default_scope('mmdg')
    from mmdg.registry import MODELS
    cfg = demo_config('full', num_workers=0)
    model = MODELS.build(cfg.model).eval()
    root = osp.join(fixtures_dir, 'cityscapes')
    ds = dict(type='CityscapesDataset', data_root=root,
              data_prefix=dict(img_path='leftImg8bit/val', seg_map_path='gtFine/val'),
              pipeline=cfg.test_pipeline)
    from mmengine.evaluator import Evaluator
    from mmengine.runner import Runner
    loader = Runner.build_dataloader(dict(batch_size=1, num_workers=0, sampler=dict(type='DefaultSampler', shuffle=False),
                                          dataset=dict(type='MultiDomainDataset', domains=dict(cityscapes=ds, again=ds))))
    evaluator = Evaluator(dict(type='MultiDomainIoUMetric'))
    evaluator.dataset_meta = loader.dataset.metainfo
    with torch.no_grad():
        for data in loader:
            evaluator.process(model.test_step(data), data)
    evaluator.evaluate(len(loader.dataset))
    res = evaluator.metrics[0].domain_results
    assert res['cityscapes']['num_images'] == 1
    per_class = res['cityscapes']['per_class']
    present = {'road', 'sidewalk', 'building', 'fence', 'pole', 'traffic sign', 'vegetation', 'sky', 'person',
               'car'}  # train ids 0,1,2,4,5,7,8,10,11,13 of the real frame
    assert all(np.isfinite(per_class[c]) for c in present)
    assert np.isnan(per_class['train']) or per_class['train'] == 0.0
    assert res['cityscapes']['mIoU'] == res['again']['mIoU']  # domains are evaluated independently
