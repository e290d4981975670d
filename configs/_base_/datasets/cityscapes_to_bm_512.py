# Cityscapes (train) -> BDD100K / Mapillary at 512: the multi-scale 512 pipeline on Cityscapes frames,
# batch 8 on 1 GPU (the official recipe).
_base_ = ['./gta5_to_cbm_512.py']
train_dataloader = dict(batch_size=8,
                        dataset=dict(_delete_=True, type='CityscapesDGDataset', split='train',
                                     data_root='data/cityscapes', pipeline={{_base_.train_pipeline}}))
target_datasets = dict(_delete_=True, bdd100k={{_base_.bdd100k_val}}, mapillary={{_base_.mapillary_val}})
val_dataloader = dict(dataset=dict(domains=dict(_delete_=True, bdd100k={{_base_.bdd100k_val}},
                                                mapillary={{_base_.mapillary_val}})))
test_dataloader = val_dataloader
auto_scale_lr = dict(base_batch_size=8)
