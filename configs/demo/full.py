# Demo: full fine-tuning of the tiny ViT on the synthetic source domain.
_base_ = [
    '../_base_/models/demo_vit_tiny_segformer.py', '../_base_/datasets/demo_synthetic.py',
    '../_base_/default_runtime.py', '../_base_/schedules/demo_cpu.py',
]
