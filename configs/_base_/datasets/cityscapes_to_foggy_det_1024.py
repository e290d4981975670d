# Cityscapes -> Foggy Cityscapes detection: 8 classes (person, rider, car, truck, bus, train, motorcycle,
# bicycle), boxes from the gtFine instance ids, VOC mAP@0.5 (11-point). Layout written by
# tools/dataset_converters/cityscapes_to_dwd.py --label-set cityscapes8 (docs/detection.md):
# data/cityscapes_det/{cityscapes,foggy_cityscapes}/VOC2007 with ImageSets/Main/{train,val}.txt.
# No official config exists for this protocol: it runs the published Diverse Weather recipe
# (configs/_base_/datasets/dwd_1024.py): RandomResize of 1024x1024 by 0.1-2.0, 1024 crops
# ('absolute_range'), flip, padding (114), photometric distortion, images without boxes kept; tested at
# 1024x512 (the long edge at 1024, as for Diverse Weather) padded to 1024x1024.
dataset_type = 'CityscapesDetDataset'
data_root = 'data/cityscapes_det'
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
    dataset=dict(_domain('cityscapes', 'train', train_pipeline, test_mode=False),
                 filter_cfg=dict(filter_empty_gt=False, min_size=32)))
# Datasets of tools/cross_domain_eval.py: the source's val split (seen) and Foggy Cityscapes val (unseen).
target_datasets = dict(
    cityscapes=_domain('cityscapes', 'val', test_pipeline),
    foggy_cityscapes=_domain('foggy_cityscapes', 'val', test_pipeline),
)
val_dataloader = dict(
    batch_size=1, num_workers=2, persistent_workers=True, drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type='MultiDomainDataset', domains=target_datasets))
test_dataloader = val_dataloader
val_evaluator = dict(type='MultiDomainVOCMetric', iou_thrs=0.5, eval_mode='11points', unseen=['foggy_cityscapes'])
test_evaluator = val_evaluator
del _domain
