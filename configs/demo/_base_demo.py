# The demo: the pre-trained tiny ViT + all-MLP head, procedural data (train on the source style, score every
# style), the CPU schedule. Each configs/demo/<method>.py is this plus the method's backbone switches.
_base_ = [
    '../_base_/models/demo_vit_tiny_segformer.py', '../_base_/datasets/demo_synthetic.py',
    '../_base_/default_runtime.py', '../_base_/schedules/demo_cpu.py',
]
