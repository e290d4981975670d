# Full fine-tuning as the official baseline: every block trains (lr x0.01 from its schedule,
# dg_seg_40k_full.py); norms, layer scales and the patch / position embeddings stay fixed. The frozen-
# prefix variant of the SoRA recipe is one override away: model.backbone.frozen_blocks=8.
_base_ = ['../models/mask2former_vit-l.py']
model = dict(backbone=dict(frozen_blocks=0,
                           frozen_params=('norm1', 'norm2', 'ls1', 'ls2', 'pos_embed', 'patch_embed')))
