# GTA5 + SYNTHIA + UrbanSyn -> Cityscapes / BDD100K / Mapillary at 512: the three synthetic sources in one
# shuffled loader, each with the multi-scale 512 pipeline (as the official recipe).
_base_ = ['./gta5+synthia_to_cbm_512.py']
urbansyn_train = dict(type='UrbanSynDataset', data_root='data/urbansyn', pipeline={{_base_.train_pipeline}})
train_dataloader = dict(dataset=dict(_delete_=True, type='ConcatDataset',
                                     datasets=[{{_base_.gta5_train}}, {{_base_.synthia_train}}, urbansyn_train]))
