# Demo: full fine-tuning of the pre-trained tiny ViT on the synthetic source style. As in the official full
# fine-tuning recipe, norms, layer scales and the embeddings stay fixed and the backbone gets a small lr
# (x0.1 here: the recipe's x0.01 is for 40k iterations, the demo runs 500); blocks 0-1 stay frozen.
_base_ = ['./_base_demo.py']
model = dict(backbone=dict(frozen_params=('norm1', 'norm2', 'ls1', 'ls2', 'pos_embed', 'patch_embed')))
optim_wrapper = dict(paramwise_cfg=dict(custom_keys=dict(backbone=dict(lr_mult=0.1))))
