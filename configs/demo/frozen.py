# Demo: frozen backbone, only the head trains.
_base_ = './full.py'
model = dict(backbone=dict(freeze=True))
