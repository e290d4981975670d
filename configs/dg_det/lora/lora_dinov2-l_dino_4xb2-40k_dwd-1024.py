# LoRA (r 16, blocks 8-23) on DINOv2-L + DINO (the lighter DETR variant), 40k iterations: Diverse Weather, train Daytime-Clear, test all five domains.
_base_ = ['../../_base_/models/dino_vit-l_det.py', '../../_base_/datasets/dwd_1024.py',
          '../../_base_/schedules/dg_det_40k.py']
model = dict(backbone=dict(adapter=dict(type='LoRA', r=16, alpha=16, blocks=(8, 24))))
