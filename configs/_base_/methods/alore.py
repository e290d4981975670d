# ALoRE: 4 Kronecker experts, bottleneck 4, in front of qkv and fc1 of blocks 8-23 (one branch per input).
# Fair recipe: the biases of every linear layer of blocks 8-23 train, as in the SoRA recipe; norms frozen.
_base_ = ['../models/mask2former_vit-l.py']
model = dict(backbone=dict(adapter=dict(type='ALoRE', r=4, num_experts=4, blocks=(8, 24), train_bias='blocks')))
