# Diverse Weather: train on Daytime-Clear, evaluate on the five weather domains, 7 classes, VOC mAP@0.5
# (11-point) per domain and the mean over the four unseen ones. Layout: data/dwd/<domain>/VOC2007 (any
# spelling of the domain folders, see docs/detection.md).
# The published SoRA detection recipe, value by value: RandomResize of 1024x1024 by 0.1-2.0, 1024 crops
# ('absolute_range'; crops without boxes kept), flip, padding to 1024x1024 (value 114) then photometric
# distortion; images without boxes are kept (filter_empty_gt=False); test at 1024x576 padded to 1024x1024.
# Image lists: Daytime-Clear trains on train.txt and is tested on test.txt; the four unseen domains are
# tested on their train.txt, as the official code reads them (not on every annotation file).
dataset_type = 'DiverseWeatherDataset'
data_root = 'data/dwd'
img_scale = (1024, 1024)
crop_size = (1024, 1024)
pad_val = dict(img=(114, 114, 114))
# mmdet's transforms, named from the mmdg scope (mmcv's RandomResize builds mmdet's box-aware Resize)
train_pipeline = [
    dict(type='mmdet.LoadImageFromFile'),
    dict(type='mmdet.LoadAnnotations', with_bbox=True),
    dict(type='mmdet.RandomResize', scale=img_scale, ratio_range=(0.1, 2.0), keep_ratio=True,
         resize_type='mmdet.Resize'),
    dict(type='mmdet.RandomCrop', crop_type='absolute_range', crop_size=crop_size, recompute_bbox=True,
         allow_negative_crop=True),
    dict(type='mmdet.FilterAnnotations', min_gt_bbox_wh=(1e-2, 1e-2)),
    dict(type='mmdet.RandomFlip', prob=0.5),
    dict(type='mmdet.Pad', size=crop_size, pad_val=pad_val),
    dict(type='mmdet.PhotoMetricDistortion'),
    dict(type='mmdet.PackDetInputs'),
]
test_pipeline = [
    dict(type='mmdet.LoadImageFromFile'),
    dict(type='mmdet.Resize', scale=img_scale, keep_ratio=True),
    dict(type='mmdet.Pad', size=img_scale, pad_val=pad_val),
    dict(type='mmdet.LoadAnnotations', with_bbox=True),
    dict(type='mmdet.PackDetInputs', meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor')),
]


def _domain(name, split, pipeline, test_mode=True):
    return dict(type=dataset_type, data_root=data_root, domain=name, split=split, pipeline=pipeline,
                test_mode=test_mode)


train_dataloader = dict(
    batch_size=2, num_workers=4, persistent_workers=True,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(_domain('daytime_clear', 'train', train_pipeline, test_mode=False),
                 filter_cfg=dict(filter_empty_gt=False, min_size=32)))
# Datasets of tools/cross_domain_eval.py (split='all' reads every annotation file instead of a list).
target_datasets = dict(
    daytime_clear=_domain('daytime_clear', 'test', test_pipeline),
    night_sunny=_domain('night_sunny', 'train', test_pipeline),
    dusk_rainy=_domain('dusk_rainy', 'train', test_pipeline),
    night_rainy=_domain('night_rainy', 'train', test_pipeline),
    daytime_foggy=_domain('daytime_foggy', 'train', test_pipeline),
)
# Validation scores every domain in one run, each on its own images.
val_dataloader = dict(
    batch_size=1, num_workers=2, persistent_workers=True, drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type='MultiDomainDataset', domains=target_datasets))
test_dataloader = val_dataloader
val_evaluator = dict(type='MultiDomainVOCMetric', iou_thrs=0.5, eval_mode='11points',
                     unseen=['night_sunny', 'dusk_rainy', 'night_rainy', 'daytime_foggy'])
test_evaluator = val_evaluator
del _domain
