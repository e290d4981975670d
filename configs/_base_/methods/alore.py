# ALoRE (METHODS.md §2): 4 Kronecker experts, bottleneck 4, in front of qkv and fc1 of blocks 8-23.
_base_ = ['../models/mask2former_vit-l.py']
model = dict(backbone=dict(adapter=dict(type='ALoRE', r=4, num_experts=4, blocks=(8, 24))))
