# SoRA (r 16, blocks 8-23) on DINOv2-L + Co-DINO (the detector of the published numbers), 40k iterations: Diverse Weather, train Daytime-Clear, test all five domains.
_base_ = ['../../_base_/models/codino_vit-l_det.py', '../../_base_/datasets/dwd_1024.py',
          '../../_base_/schedules/dg_det_40k.py']
model = dict(backbone=dict(adapter=dict(type='SoRA', r=16, alpha=16, blocks=(8, 24))))
