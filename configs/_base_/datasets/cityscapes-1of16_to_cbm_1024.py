# The data-efficiency protocol at 1024: fine-tune on 1/16 of the Cityscapes training set (a list of image
# names, `splits/cityscapes_train_1of16.txt` under the Cityscapes root; docs/datasets.md says how to make
# it), randomly resized x0.5-2.0 around 2048x1024, 1024 crops, batch 4; targets as the 1024 protocol.
_base_ = ['./gta5+synthia+urbansyn_to_cbm_1024.py']
train_dataloader = dict(dataset=dict(_delete_=True, type='CityscapesDGDataset', split='train',
                                     data_root='data/cityscapes', ann_file='splits/cityscapes_train_1of16.txt',
                                     pipeline={{_base_.train_pipeline_1024}}))
