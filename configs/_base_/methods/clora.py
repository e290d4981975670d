# CLoRA (METHODS.md §4): 4 shared bases of rank 8 per layer shape, SADE regulariser, blocks 8-23.
_base_ = ['../models/mask2former_vit-l.py']
model = dict(backbone=dict(adapter=dict(type='CLoRA', r=8, alpha=8, num_bases=4, blocks=(8, 24))))
