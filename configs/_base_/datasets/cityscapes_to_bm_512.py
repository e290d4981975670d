# Cityscapes (train) -> BDD100K / Mapillary.
_base_ = ['./gta5_to_cbm_512.py']
train_dataloader = dict(dataset=dict(_delete_=True, type='CityscapesDGDataset', split='train',
                                     data_root='data/cityscapes', pipeline={{_base_.cityscapes_train_pipeline}}))
target_datasets = dict(_delete_=True, bdd100k={{_base_.bdd100k_val}}, mapillary={{_base_.mapillary_val}})
val_dataloader = dict(dataset=dict(domains=dict(_delete_=True, bdd100k={{_base_.bdd100k_val}},
                                                mapillary={{_base_.mapillary_val}})))
test_dataloader = val_dataloader
