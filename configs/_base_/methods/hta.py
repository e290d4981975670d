# HTA: Householder adaptation of q, k, v, proj in blocks 8-23, extra rank 1.
# Fair recipe: the biases of every linear layer of blocks 8-23 train, as in the SoRA recipe; norms frozen.
_base_ = ['../models/mask2former_vit-l.py']
model = dict(backbone=dict(adapter=dict(type='HTA', extra_rank=1, blocks=(8, 24), train_bias='blocks')))
