# Demo: CLoRA adapters in blocks 2-5 of the pre-trained tiny ViT (blocks 0-1 and every pre-trained weight frozen;
# the biases of the adapted blocks train, the fair recipe of configs/_base_/methods).
_base_ = ['./_base_demo.py']
model = dict(backbone=dict(adapter=dict(type='CLoRA', r=8, alpha=8, num_bases=4, blocks=(2, 6), train_bias='blocks')))
