# GTA5 -> Cityscapes / BDD100K / Mapillary at 512 as the official Rein recipe evaluates it: the same
# training data and pipeline as gta5_to_cbm_512.py, but Cityscapes and (half-resolution) Mapillary
# images are fit into 1024x512 for testing (BDD100K stays at 1280x720).
_base_ = ['./gta5_to_cbm_512.py']
rein_test_pipeline_1024x512 = [
    dict(type='LoadImageChecked'),
    dict(type='Resize', scale=(1024, 512), keep_ratio=True),
    dict(type='LoadAnnotationsChecked', num_classes=19),
    dict(type='PackSegInputs'),
]
target_datasets = dict(cityscapes=dict(pipeline=rein_test_pipeline_1024x512),
                       mapillary=dict(pipeline=rein_test_pipeline_1024x512))
val_dataloader = dict(dataset=dict(domains=target_datasets))
test_dataloader = val_dataloader
