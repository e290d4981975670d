# PiSSA: SoRA's construction with the principal (largest) singular components, same layers and rank.
_base_ = ['../models/mask2former_vit-l.py']
model = dict(backbone=dict(adapter=dict(type='PiSSA', r=16, alpha=16, blocks=(8, 24))))
