# Cityscapes -> ACDC with 512 crops: the official 512 variant keeps the 1024 protocol's resizing (shortest
# edge 512-2048, validation at 1920x1080) and only crops 512.
_base_ = ['./cityscapes_to_acdc_1024.py']
train_dataloader = dict(dataset=dict(pipeline={{_base_.acdc_train_pipeline_512}}))
