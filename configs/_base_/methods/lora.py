# LoRA (Kaiming A, zero B) on SoRA's layers and blocks, r = 16. The fair recipe: like every adapter
# config here it trains the biases of every linear layer of blocks 8-23 (SoRA's set); norms stay frozen.
_base_ = ['../models/mask2former_vit-l.py']
model = dict(backbone=dict(adapter=dict(type='LoRA', r=16, alpha=16, blocks=(8, 24), train_bias='blocks')))
