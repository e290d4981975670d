# CLoRA: 4 shared bases of rank 8 per matrix shape, SADE regulariser, blocks 8-23.
# Fair recipe: the biases of every linear layer of blocks 8-23 train, as in the SoRA recipe; norms frozen.
_base_ = ['../models/mask2former_vit-l.py']
model = dict(backbone=dict(adapter=dict(type='CLoRA', r=8, alpha=8, num_bases=4, blocks=(8, 24),
                                        train_bias='blocks')))
