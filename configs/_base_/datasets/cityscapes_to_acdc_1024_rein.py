# Cityscapes (train) -> ACDC fog / night / rain / snow at 1024 as the official Rein recipe runs it
# (w1oves/Rein: configs/dinov2_citys2acdc/rein_dinov2_mask2former_1024x1024_bs4x2.py, the same file as
# configs/dinov2/rein_dinov2_mask2former_1024x1024_bs4x2.py, on configs/_base_/datasets/dg_citys2acdc_1024x1024.py).
# The SoRA 1024 data (cityscapes_to_acdc_1024.py: shortest edge one of 512, 614, ..., 2048, long edge at
# most 4096, 1024 crops, batch 2 on each of 4 GPUs; ACDC val fit into 1920x1080; tools/test.py writes
# predictions of the ACDC test split, train ids), plus what the Rein recipe adds:
# Validation also scores Cityscapes val fit into 2048x1024; the mean (`mean/mIoU`) stays over the four ACDC
# conditions, as the official `mean_used_keys` (night, fog, snow, rain). Official metric keys: `night/_mIoU`,
# `fog/_mIoU`, `snow/_mIoU`, `rain/_mIoU`, `cityscapes/_mIoU`, `mean_mIoU` (and `_aAcc` / `_mAcc`).
# The official test writes all four conditions' PNGs into one folder (work_dirs/format_results, relative to
# the working directory); mmdg writes one folder per condition under <work_dir>/format_results (or --out).
_base_ = ['./cityscapes_to_acdc_1024.py']
acdc_conditions = ('fog', 'night', 'rain', 'snow')
# the base's Cityscapes val (gta5_to_cbm_512.py): fit into 2048x1024, as the official cityscapes_1024x1024.py
val_dataloader = dict(dataset=dict(domains=dict(cityscapes={{_base_.cityscapes_val}})))
val_evaluator = dict(type='MultiDomainIoUMetric', mean_over=list(acdc_conditions))
