# GTA5 -> Cityscapes / BDD100K / Mapillary, the main DG protocol (METHODS.md §6-7). The other protocols'
# data configs inherit this file and swap the source or the targets.
# Train: 512 crops from images randomly resized 0.5-2.0 around 1280x720, flip, photometric distortion.
# Targets: resized to fit 1024x512, one validation run scoring each target on its own images
# (`<target>/mIoU` and their mean `mean/mIoU`). The *Checked loaders stop with the file name on an
# undecodable image or a label value outside the 19 classes.
train_pipeline = [
    dict(type='LoadImageChecked'),
    dict(type='LoadAnnotationsChecked', num_classes=19),
    dict(type='RandomResize', scale=(1280, 720), ratio_range=(0.5, 2.0), keep_ratio=True),
    dict(type='RandomCrop', crop_size=(512, 512), cat_max_ratio=0.75),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PhotoMetricDistortion'),
    dict(type='PackSegInputs'),
]
# Cityscapes frames (2048x1024) as a source: resized around 1024x512 instead.
cityscapes_train_pipeline = [dict(t, scale=(1024, 512)) if t['type'] == 'RandomResize' else t for t in train_pipeline]
test_pipeline = [
    dict(type='LoadImageChecked'),
    dict(type='Resize', scale=(1024, 512), keep_ratio=True),
    dict(type='LoadAnnotationsChecked', num_classes=19),
    dict(type='PackSegInputs'),
]
# The 1024 protocol (Cityscapes -> ACDC at 1024): 1024 crops around 2048x1024, targets fit 2048x1024.
cityscapes_train_pipeline_1024 = [dict(t, scale=(2048, 1024)) if t['type'] == 'RandomResize' else
                                  dict(t, crop_size=(1024, 1024)) if t['type'] == 'RandomCrop' else t
                                  for t in train_pipeline]
test_pipeline_1024 = [dict(t, scale=(2048, 1024)) if t['type'] == 'Resize' else t for t in test_pipeline]
# Each dataset in its public layout under data/ (docs/datasets.md).
gta5_train = dict(type='GTA5Dataset', data_root='data/gta5', pipeline=train_pipeline)
cityscapes_val = dict(type='CityscapesDGDataset', split='val', data_root='data/cityscapes', pipeline=test_pipeline)
bdd100k_val = dict(type='BDD100KDGDataset', split='val', data_root='data/bdd100k', pipeline=test_pipeline)
mapillary_val = dict(type='MapillaryCS19Dataset', split='validation', data_root='data/mapillary',
                     pipeline=test_pipeline)

train_dataloader = dict(
    batch_size=4, num_workers=4, persistent_workers=True,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=gta5_train)
# tools/cross_domain_eval.py evaluates these (--targets picks some).
target_datasets = dict(cityscapes=cityscapes_val, bdd100k=bdd100k_val, mapillary=mapillary_val)
val_dataloader = dict(
    batch_size=1, num_workers=4, persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type='MultiDomainDataset', domains=target_datasets))
test_dataloader = val_dataloader
val_evaluator = dict(type='MultiDomainIoUMetric')
test_evaluator = val_evaluator
