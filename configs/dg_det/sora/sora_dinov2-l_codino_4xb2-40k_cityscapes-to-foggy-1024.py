# SoRA on DINOv2-L + Co-DINO, 40k iterations: Cityscapes -> Foggy Cityscapes, 8 classes, mAP@0.5.
_base_ = ['../../_base_/models/codino_vit-l_det.py', '../../_base_/datasets/cityscapes_to_foggy_det_1024.py',
          '../../_base_/schedules/dg_det_40k.py']
model = dict(backbone=dict(adapter=dict(type='SoRA', r=16, alpha=16, blocks=(8, 24))), bbox_head=dict(num_classes=8))
# (the auxiliary heads take the DINO head's num_classes)
