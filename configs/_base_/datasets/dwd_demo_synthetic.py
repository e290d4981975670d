# The procedural demo data in Diverse Weather's VOC layout (written by mmdg.datasets.voc_writer, 128x256,
# DWD's 7 classes): train on the synthetic source style; evaluate on it and on the unseen styles.
# LoadImageChecked names a file that cannot be decoded (boxes are read by mmdet's own loader).
dataset_type = 'DiverseWeatherDataset'
data_root = 'data/demo_det'
train_pipeline = [
    dict(type='LoadImageChecked'),
    dict(type='mmdet.LoadAnnotations', with_bbox=True),
    dict(type='mmdet.RandomResize', scale=(256, 128), ratio_range=(1.0, 1.5), keep_ratio=True,
         resize_type='mmdet.Resize'),
    dict(type='mmdet.RandomCrop', crop_type='absolute', crop_size=(128, 256), recompute_bbox=True,
         allow_negative_crop=False),
    dict(type='mmdet.FilterAnnotations', min_gt_bbox_wh=(1e-2, 1e-2)),
    dict(type='mmdet.RandomFlip', prob=0.5),
    dict(type='mmdet.PhotoMetricDistortion'),
    dict(type='mmdet.PackDetInputs'),
]
test_pipeline = [
    dict(type='LoadImageChecked'),
    dict(type='mmdet.Resize', scale=(256, 128), keep_ratio=True),
    dict(type='mmdet.LoadAnnotations', with_bbox=True),
    dict(type='mmdet.PackDetInputs', meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor')),
]


def _domain(name, split, pipeline, test_mode=True):
    return dict(type=dataset_type, data_root=data_root, domain=name, split=split, pipeline=pipeline,
                test_mode=test_mode)


train_dataloader = dict(
    batch_size=8, num_workers=2, persistent_workers=True,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(_domain('source', 'train', train_pipeline, test_mode=False), filter_cfg=dict(filter_empty_gt=True)))
# Datasets of tools/cross_domain_eval.py and the demo's table: the source (seen) and four unseen styles.
target_datasets = {name: _domain(name, 'test', test_pipeline) for name in ('source', 'realistic', 'night', 'fog', 'rain')}
val_dataloader = dict(
    batch_size=8, num_workers=2, persistent_workers=True, drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type='MultiDomainDataset', domains=target_datasets))
test_dataloader = val_dataloader
val_evaluator = dict(type='MultiDomainVOCMetric', iou_thrs=0.5, eval_mode='11points',
                     unseen=['realistic', 'night', 'fog', 'rain'])
test_evaluator = val_evaluator
del _domain
