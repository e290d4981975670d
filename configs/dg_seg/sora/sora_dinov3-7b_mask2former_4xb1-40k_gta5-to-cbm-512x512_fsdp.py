# The DINOv3-7B SoRA setting sharded over 4 GPUs at batch 1 each (the recipe's total batch of 4), with
# activation checkpointing; bf16 frozen weights, fp32 adapter masters (configs/_base_/fsdp2.py).
# No EMA: FSDP2Strategy does not shard mmengine's averaged copy of the model (the rest of dg_seg_40k's hooks).
# mmdg's own setting; not yet trained. Per-GPU memory: tools/memory_estimate.py CONFIG --gpus 1 8 16.
_base_ = ['./sora_dinov3-7b_mask2former_1xb4-40k_gta5-to-cbm-512x512.py', '../../_base_/fsdp2.py']
model = dict(backbone=dict(grad_checkpointing=True))  # recompute each block's activations in the backward
train_dataloader = dict(batch_size=1)
custom_hooks = [
    dict(type='AdapterAuxLossHook'),
    dict(type='WeightDecayLoggerHook'),
    dict(type='NonFiniteLossHook'),
    dict(type='RNGStateCheckpointHook'),
]
