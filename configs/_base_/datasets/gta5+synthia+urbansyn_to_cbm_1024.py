# GTA5 + SYNTHIA + UrbanSyn -> Cityscapes / BDD100K / Mapillary at 1024, as the official recipe: every
# source randomly resized x0.5-2.0 around 2048x1024, 1024 crops, batch 4; all three targets fit 2048x1024
# (Mapillary on its half-resolution validation set).
_base_ = ['./gta5_to_cbm_512.py']
train_pipeline_1024 = [
    dict(type='LoadImageChecked'),
    dict(type='LoadAnnotationsChecked', num_classes=19),
    dict(type='RandomResize', scale=(2048, 1024), ratio_range=(0.5, 2.0), keep_ratio=True),
    dict(type='RandomCrop', crop_size=(1024, 1024), cat_max_ratio=0.75),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PhotoMetricDistortion'),
    dict(type='PackSegInputs'),
]
test_pipeline_1024 = [
    dict(type='LoadImageChecked'),
    dict(type='Resize', scale=(2048, 1024), keep_ratio=True),
    dict(type='LoadAnnotationsChecked', num_classes=19),
    dict(type='PackSegInputs'),
]
train_dataloader = dict(dataset=dict(_delete_=True, type='ConcatDataset', datasets=[
    dict(type='GTA5Dataset', data_root='data/gta5', pipeline=train_pipeline_1024),
    dict(type='SYNTHIADataset', data_root='data/synthia', pipeline=train_pipeline_1024),
    dict(type='UrbanSynDataset', data_root='data/urbansyn', pipeline=train_pipeline_1024)]))
targets_1024 = dict(
    cityscapes=dict(type='CityscapesDGDataset', split='val', data_root='data/cityscapes', pipeline=test_pipeline_1024),
    bdd100k=dict(type='BDD100KDGDataset', split='val', data_root='data/bdd100k', pipeline=test_pipeline_1024),
    mapillary=dict(type='MapillaryCS19Dataset', split='validation', half_resolution=True,
                   data_root='data/mapillary', pipeline=test_pipeline_1024))
target_datasets = dict(_delete_=True, **targets_1024)
val_dataloader = dict(dataset=dict(domains=dict(_delete_=True, **targets_1024)))
test_dataloader = val_dataloader
