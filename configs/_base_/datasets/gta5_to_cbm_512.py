# GTA5 -> Cityscapes / BDD100K / Mapillary at 512, the main DG protocol, as the official SoRA recipe
# runs it (docs/parity.md lists every value beside the official one). The other protocols' data
# configs inherit this file and swap the source, the targets or the sizes.
# Train: the shortest edge resized to one of 256, 307, ..., 1024 (0.5-2.0 x 512; long edge at most
# 2048), 512 crops, flip, photometric distortion; batch 4 on 1 GPU.
# Targets: Cityscapes fit 2048x1024, BDD100K 1280x720, Mapillary 2048x1024 on the half-resolution
# validation copy (the official evaluation; docs/datasets.md), scored one target at a time in one
# validation run (`<target>/mIoU` and their mean `mean/mIoU`). The *Checked loaders stop with the
# file name on an undecodable image or a label value outside the 19 classes.
multi_scale_512 = [int(512 * x * 0.1) for x in range(5, 21)]
train_pipeline = [
    dict(type='LoadImageChecked'),
    dict(type='LoadAnnotationsChecked', num_classes=19),
    dict(type='RandomChoiceResize', scales=multi_scale_512, resize_type='ResizeShortestEdge', max_size=2048),
    dict(type='RandomCrop', crop_size=(512, 512), cat_max_ratio=0.75),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PhotoMetricDistortion'),
    dict(type='PackSegInputs'),
]


def test_pipeline_at(scale):
    return [
        dict(type='LoadImageChecked'),
        dict(type='Resize', scale=scale, keep_ratio=True),
        dict(type='LoadAnnotationsChecked', num_classes=19),
        dict(type='PackSegInputs'),
    ]


# Each dataset in its public layout under data/ (docs/datasets.md).
gta5_train = dict(type='GTA5Dataset', data_root='data/gta5', pipeline=train_pipeline)
cityscapes_val = dict(type='CityscapesDGDataset', split='val', data_root='data/cityscapes',
                      pipeline=test_pipeline_at((2048, 1024)))
bdd100k_val = dict(type='BDD100KDGDataset', split='val', data_root='data/bdd100k',
                   pipeline=test_pipeline_at((1280, 720)))
mapillary_val = dict(type='MapillaryCS19Dataset', split='validation', half_resolution=True,
                     data_root='data/mapillary', pipeline=test_pipeline_at((2048, 1024)))
del test_pipeline_at  # a helper, not a config value

train_dataloader = dict(
    batch_size=4, num_workers=2, persistent_workers=True, pin_memory=True,
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
# The recipe's total batch (GPUs x batch per GPU). tools/train.py warns when a run's differs, and
# `--auto-scale-lr` scales the lr linearly to it (mmengine's auto_scale_lr).
auto_scale_lr = dict(enable=False, base_batch_size=4)
