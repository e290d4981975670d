# Cityscapes (train) -> ACDC fog / night / rain / snow at 512 as the official Rein recipe runs it
# (w1oves/Rein: configs/dinov2_citys2acdc/rein_dinov2_mask2former_512x512_bs1x4.py on
# configs/_base_/datasets/dg_citys2acdc_512x512.py). Unlike the SoRA 512 variant (cityscapes_to_acdc_512.py):
# Train: the GTA5 512 pipeline on Cityscapes train: shortest edge resized to one of 256, 307, ..., 1024
# (long edge at most 2048), 512 crops (cat_max_ratio 0.75), flip 0.5, photometric distortion; batch 4 on 1 GPU.
# Validation: ACDC val of each condition fit into 960x540, plus Cityscapes val fit into 1024x512; the mean
# (`mean/mIoU`) is over the four ACDC conditions only, as the official `mean_used_keys` (night, fog, snow,
# rain). Official metric keys: `night/_mIoU`, `fog/_mIoU`, `snow/_mIoU`, `rain/_mIoU`, `mean_mIoU` (and
# `_aAcc` / `_mAcc`); the Cityscapes images match none of its dataset_keys ('citys/' is not in
# 'data/cityscapes/...'), so the official log names them `unknown_mIoU`; mmdg: `cityscapes/mIoU`.
# Test (tools/test.py): Cityscapes val fit into 1024x512, scored (official: mmseg IoUMetric, key `mIoU`;
# mmdg: `cityscapes/mIoU`, equal to `mean/mIoU`).
_base_ = ['./gta5_to_cbm_512.py']


def _pipeline_at(scale):
    return [
        dict(type='LoadImageChecked'),
        dict(type='Resize', scale=scale, keep_ratio=True),
        dict(type='LoadAnnotationsChecked', num_classes=19),
        dict(type='PackSegInputs'),
    ]


acdc_conditions = ('fog', 'night', 'rain', 'snow')
acdc_val_960x540 = {c: dict(type='ACDCDataset', condition=c, split='val', data_root='data/acdc',
                            pipeline=_pipeline_at((960, 540))) for c in acdc_conditions}
cityscapes_val_1024x512 = dict(type='CityscapesDGDataset', split='val', data_root='data/cityscapes',
                               pipeline=_pipeline_at((1024, 512)))
del _pipeline_at  # a helper, not a config value

# train_pipeline: the base's (GTA5 512), which the official Cityscapes -> ACDC 512 config repeats value by value
train_dataloader = dict(batch_size=4,
                        dataset=dict(_delete_=True, type='CityscapesDGDataset', split='train',
                                     data_root='data/cityscapes', pipeline={{_base_.train_pipeline}}))
target_datasets = dict(_delete_=True, **acdc_val_960x540)
val_dataloader = dict(dataset=dict(domains=dict(_delete_=True, **acdc_val_960x540, cityscapes=cityscapes_val_1024x512)))
val_evaluator = dict(type='MultiDomainIoUMetric', mean_over=list(acdc_conditions))
test_dataloader = dict(dataset=dict(domains=dict(_delete_=True, cityscapes=cityscapes_val_1024x512)))
test_evaluator = dict(type='MultiDomainIoUMetric')
auto_scale_lr = dict(base_batch_size=4)  # 1 GPU x 4
