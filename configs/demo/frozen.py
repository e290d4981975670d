# Demo: frozen pre-trained backbone, only the head trains.
_base_ = ['./_base_demo.py']
model = dict(backbone=dict(freeze=True))
