# Cityscapes (train) -> ACDC fog / night / rain / snow (val; the test split is scored by the ACDC server).
_base_ = ['./cityscapes_to_bm_512.py']
acdc_val = {c: dict(type='ACDCDataset', condition=c, split='val', data_root='data/acdc',
                    pipeline={{_base_.test_pipeline}}) for c in ('fog', 'night', 'rain', 'snow')}
target_datasets = dict(_delete_=True, **acdc_val)
val_dataloader = dict(dataset=dict(domains=dict(_delete_=True, **acdc_val)))
test_dataloader = val_dataloader
