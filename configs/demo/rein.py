# Demo: Rein (learnable tokens refining every block's output) on the frozen pre-trained tiny ViT. Rein
# refines every block, so no block prefix is set aside; the all-MLP head takes no queries (link_queries off).
_base_ = ['./_base_demo.py']
model = dict(backbone=dict(frozen_blocks=0, adapter=dict(type='Rein', token_length=100, r=16, link_queries=False)))
