# The procedural demo data (`python tools/generate_demo_data.py`): Cityscapes layout, 19 train ids.
# Train on the synthetic source style; evaluate on unseen styles (target_datasets). The *Checked loaders
# name a file that cannot be decoded, a label value outside the classes or a label of another size.
dataset_type = 'CityscapesDataset'
data_root = 'data/demo'
crop_size = (128, 256)
train_pipeline = [
    dict(type='LoadImageChecked'),
    dict(type='LoadAnnotationsChecked', num_classes=19),
    dict(type='RandomResize', scale=(256, 128), ratio_range=(1.0, 1.5), keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop_size, cat_max_ratio=0.75),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PhotoMetricDistortion'),
    dict(type='PackSegInputs'),
]
test_pipeline = [
    dict(type='LoadImageChecked'),
    dict(type='Resize', scale=(256, 128), keep_ratio=True),
    dict(type='LoadAnnotationsChecked', num_classes=19),
    dict(type='PackSegInputs'),
]


def _domain(name, split, pipeline):
    return dict(type=dataset_type, data_root=f'{data_root}/{name}',
                data_prefix=dict(img_path=f'leftImg8bit/{split}', seg_map_path=f'gtFine/{split}'),
                pipeline=pipeline)


train_dataloader = dict(
    batch_size=8, num_workers=2, persistent_workers=True,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=_domain('source', 'train', train_pipeline))
# Datasets of tools/cross_domain_eval.py and the demo's table: the source (seen) and four unseen styles.
target_datasets = {name: _domain(name, 'val', test_pipeline)
                   for name in ('source', 'realistic', 'night', 'fog', 'rain')}
# Validation scores every style in one run, each on its own images (per-domain mIoU and their mean).
val_dataloader = dict(
    batch_size=8, num_workers=2, persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type='MultiDomainDataset', domains=target_datasets))
test_dataloader = val_dataloader
val_evaluator = dict(type='MultiDomainIoUMetric', unseen=['realistic', 'night', 'fog', 'rain'])
test_evaluator = val_evaluator
del _domain
