# Frozen backbone: only the Mask2Former head trains.
_base_ = ['../models/mask2former_vit-l.py']
model = dict(backbone=dict(freeze=True))
