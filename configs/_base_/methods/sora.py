# SoRA: minor singular components of q, k, v, proj, fc1, fc2 in blocks 8-23, r = 16.
_base_ = ['../models/mask2former_vit-l.py']
model = dict(backbone=dict(adapter=dict(type='SoRA', r=16, alpha=16, blocks=(8, 24))))
