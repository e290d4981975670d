# Demo baseline: the same ViT trained from random weights (no pre-training), every block and parameter
# trainable at the full lr: what the pre-trained rows are measured against.
_base_ = ['./_base_demo.py']
model = dict(backbone=dict(pretrained=None, frozen_blocks=0))
optim_wrapper = dict(paramwise_cfg=dict(custom_keys=dict(backbone=dict(lr_mult=1.0))))
