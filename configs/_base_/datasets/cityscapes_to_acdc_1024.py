# Cityscapes (train) -> ACDC fog / night / rain / snow at 1024, as the official recipe: the shortest
# edge resized to one of 512, 614, ..., 2048 (long edge at most 4096), 1024 crops, batch 2 on each of
# 4 GPUs; validation on ACDC val resized to fit 1920x1080 (the test split is scored by the ACDC server).
_base_ = ['./gta5_to_cbm_512.py']
multi_scale_1024 = [int(1024 * x * 0.1) for x in range(5, 21)]
acdc_train_pipeline = [
    dict(type='LoadImageChecked'),
    dict(type='LoadAnnotationsChecked', num_classes=19),
    dict(type='RandomChoiceResize', scales=multi_scale_1024, resize_type='ResizeShortestEdge', max_size=4096),
    dict(type='RandomCrop', crop_size=(1024, 1024), cat_max_ratio=0.75),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PhotoMetricDistortion'),
    dict(type='PackSegInputs'),
]
# The official 512 variant keeps this resizing and only crops 512.
acdc_train_pipeline_512 = [dict(t, crop_size=(512, 512)) if t['type'] == 'RandomCrop' else t
                           for t in acdc_train_pipeline]
acdc_test_pipeline = [
    dict(type='LoadImageChecked'),
    dict(type='Resize', scale=(1920, 1080), keep_ratio=True),
    dict(type='LoadAnnotationsChecked', num_classes=19),
    dict(type='PackSegInputs'),
]
train_dataloader = dict(batch_size=2,
                        dataset=dict(_delete_=True, type='CityscapesDGDataset', split='train',
                                     data_root='data/cityscapes', pipeline=acdc_train_pipeline))
acdc_val = {c: dict(type='ACDCDataset', condition=c, split='val', data_root='data/acdc',
                    pipeline=acdc_test_pipeline) for c in ('fog', 'night', 'rain', 'snow')}
target_datasets = dict(_delete_=True, **acdc_val)
val_dataloader = dict(dataset=dict(domains=dict(_delete_=True, **acdc_val)))
test_dataloader = val_dataloader
auto_scale_lr = dict(base_batch_size=8)  # 4 GPUs x 2
# tools/test.py runs the ACDC *test* split (no public labels) and writes the predictions for the ACDC
# server, one folder per condition: `tools/test.py CONFIG CKPT --out DIR` (default: <work_dir>/format_results).
acdc_submission_pipeline = [t for t in acdc_test_pipeline if t['type'] != 'LoadAnnotationsChecked']
test_dataloader = dict(
    _delete_=True, batch_size=1, num_workers=4, persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type='MultiDomainDataset', domains={
        c: dict(type='ACDCDataset', condition=c, split='test', data_root='data/acdc', pipeline=acdc_submission_pipeline)
        for c in ('fog', 'night', 'rain', 'snow')}))
# train ids, as the official configs write them (mmseg's IoUMetric(format_only=True)); tools/test.py
# --label-encoding label_id writes Cityscapes label ids instead.
test_evaluator = dict(_delete_=True, type='SegPredictionWriter', output_dir='format_results', encoding='train_id')
