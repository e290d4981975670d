# SoRA on DINOv2-L + Mask2Former, batch 4 on 1 GPU, 40k iterations: GTA5 + SYNTHIA + UrbanSyn -> Cityscapes / BDD100K / Mapillary, 1024 crops.
_base_ = ['../../_base_/methods/sora.py', '../../_base_/datasets/gta5+synthia+urbansyn_to_cbm_1024.py',
          '../../_base_/schedules/dg_seg_40k_gsu_1024.py']
model = dict(data_preprocessor=dict(size=(1024, 1024)), backbone=dict(img_size=1024),
             test_cfg=dict(crop_size=(1024, 1024), stride=(683, 683)))
