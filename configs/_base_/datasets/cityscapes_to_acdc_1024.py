# Cityscapes -> ACDC at 1024: 1024 crops for training, targets resized to fit 2048x1024.
_base_ = ['./cityscapes_to_acdc_512.py']
train_dataloader = dict(dataset=dict(pipeline={{_base_.cityscapes_train_pipeline_1024}}))
acdc_val = {c: dict(type='ACDCDataset', condition=c, split='val', data_root='data/acdc',
                    pipeline={{_base_.test_pipeline_1024}}) for c in ('fog', 'night', 'rain', 'snow')}
target_datasets = dict(_delete_=True, **acdc_val)
val_dataloader = dict(dataset=dict(domains=dict(_delete_=True, **acdc_val)))
test_dataloader = val_dataloader
