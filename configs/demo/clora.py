# Demo: CLoRA adapters in every block of the tiny ViT (the rest of the backbone frozen).
_base_ = './full.py'
model = dict(backbone=dict(adapter=dict(type='CLoRA')))
