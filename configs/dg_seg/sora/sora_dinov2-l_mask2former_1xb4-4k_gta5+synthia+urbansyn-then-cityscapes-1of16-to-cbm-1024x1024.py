# SoRA on DINOv2-L + Mask2Former, batch 4 on 1 GPU, 4k iterations: the data-efficiency setting. Fine-tune the
# GTA5 + SYNTHIA + UrbanSyn 1024 model on 1/16 of Cityscapes, then evaluate on Cityscapes / BDD100K /
# Mapillary. `load_from` is that model: link your best checkpoint of the 1024 GTA5 + SYNTHIA + UrbanSyn
# config there, or the released one converted with tools/convert/soma.py (or pass --cfg-options load_from=...).
_base_ = ['../../_base_/methods/sora.py', '../../_base_/datasets/cityscapes-1of16_to_cbm_1024.py',
          '../../_base_/schedules/dg_seg_4k_finetune.py']
model = dict(data_preprocessor=dict(size=(1024, 1024)), backbone=dict(img_size=1024),
             test_cfg=dict(crop_size=(1024, 1024), stride=(683, 683)))
load_from = 'checkpoints/sora_dinov2-l_gta5+synthia+urbansyn_1024.pth'
