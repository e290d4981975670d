# Diverse Weather (METHODS.md §7): train on Daytime-Clear, evaluate on the five weather domains, 7 classes,
# VOC mAP@0.5 (11-point) per domain and the mean over the four unseen ones. Layout: data/dwd/<domain>/VOC2007
# (any spelling of the domain folders, see docs/detection.md). 1024 crops (METHODS.md §6) from images
# rescaled 0.5-2x around their native 1280x720; tested at the native size.
dataset_type = 'DiverseWeatherDataset'
data_root = 'data/dwd'
img_scale = (1280, 720)
crop_size = (1024, 1024)
# mmdet's transforms, named from the mmdg scope (mmcv's RandomResize builds mmdet's box-aware Resize)
train_pipeline = [
    dict(type='mmdet.LoadImageFromFile'),
    dict(type='mmdet.LoadAnnotations', with_bbox=True),
    dict(type='mmdet.RandomResize', scale=img_scale, ratio_range=(0.5, 2.0), keep_ratio=True,
         resize_type='mmdet.Resize'),
    dict(type='mmdet.RandomCrop', crop_type='absolute', crop_size=crop_size, recompute_bbox=True,
         allow_negative_crop=False),
    dict(type='mmdet.FilterAnnotations', min_gt_bbox_wh=(1e-2, 1e-2)),
    dict(type='mmdet.RandomFlip', prob=0.5),
    dict(type='mmdet.PackDetInputs'),
]
test_pipeline = [
    dict(type='mmdet.LoadImageFromFile'),
    dict(type='mmdet.Resize', scale=img_scale, keep_ratio=True),
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
                 filter_cfg=dict(filter_empty_gt=True, min_size=32)))
# Datasets of tools/cross_domain_eval.py: Daytime-Clear's test split and every image of the other domains
# (split='all'; use a split name to read ImageSets/Main/<split>.txt instead).
target_datasets = dict(
    daytime_clear=_domain('daytime_clear', 'test', test_pipeline),
    night_sunny=_domain('night_sunny', 'all', test_pipeline),
    dusk_rainy=_domain('dusk_rainy', 'all', test_pipeline),
    night_rainy=_domain('night_rainy', 'all', test_pipeline),
    daytime_foggy=_domain('daytime_foggy', 'all', test_pipeline),
)
# Validation scores every domain in one run, each on its own images.
val_dataloader = dict(
    batch_size=1, num_workers=2, persistent_workers=True, drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type='MultiDomainDataset', domains=target_datasets))
test_dataloader = val_dataloader
val_evaluator = dict(type='MultiDomainVOCMetric', iou_thrs=0.5, eval_mode='11points',
                     mean_over=['night_sunny', 'dusk_rainy', 'night_rainy', 'daytime_foggy'])
test_evaluator = val_evaluator
del _domain
