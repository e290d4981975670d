# GTA5 + SYNTHIA (RAND-CITYSCAPES) -> Cityscapes / BDD100K / Mapillary: both sources in one shuffled
# loader, both with the multi-scale 512 pipeline (as the official recipe).
_base_ = ['./gta5_to_cbm_512.py']
synthia_train = dict(type='SYNTHIADataset', data_root='data/synthia', pipeline={{_base_.train_pipeline}})
train_dataloader = dict(dataset=dict(_delete_=True, type='ConcatDataset',
                                     datasets=[{{_base_.gta5_train}}, synthia_train]))
