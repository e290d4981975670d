# HTA (METHODS.md §3): Householder adaptation of q, k, v, proj in blocks 8-23, extra rank 1.
_base_ = ['../models/mask2former_vit-l.py']
model = dict(backbone=dict(adapter=dict(type='HTA', extra_rank=1, blocks=(8, 24))))
