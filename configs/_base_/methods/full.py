# Full fine-tuning of blocks 8-23 (blocks 0-7 frozen), backbone lr x0.5 from the schedule.
_base_ = ['../models/mask2former_vit-l.py']
