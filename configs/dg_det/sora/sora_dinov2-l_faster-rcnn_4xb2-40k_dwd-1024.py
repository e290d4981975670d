# SoRA on DINOv2-L + Faster R-CNN (the lighter baseline detector), 40k iterations: Diverse Weather.
_base_ = ['../../_base_/models/faster-rcnn_vit-l_det.py', '../../_base_/datasets/dwd_1024.py',
          '../../_base_/schedules/dg_det_40k.py']
model = dict(backbone=dict(adapter=dict(type='SoRA', r=16, alpha=16, blocks=(8, 24))))
