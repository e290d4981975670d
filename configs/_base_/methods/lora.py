# LoRA (Kaiming A, zero B) on SoRA's layers and blocks, r = 16.
_base_ = ['../models/mask2former_vit-l.py']
model = dict(backbone=dict(adapter=dict(type='LoRA', r=16, alpha=16, blocks=(8, 24))))
