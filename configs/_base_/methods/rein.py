# Rein: learnable low-rank tokens (100 tokens, rank 16) refine the output of each of the 24 frozen blocks;
# the same tokens make the Mask2Former head's 100 query embeddings and, through a linear layer, its
# initial query features (ReinMask2FormerHead). The backbone stays frozen; every block is refined, so no
# block prefix is set aside. Trainable: 2,990,081 Rein parameters on DINOv2-L, plus the head.
_base_ = ['../models/mask2former_vit-l.py']
model = dict(
    backbone=dict(
        frozen_blocks=0,
        adapter=dict(type='Rein', token_length=100, r=16, query_dim=256, link_queries=True),
        return_queries=True),
    decode_head=dict(type='ReinMask2FormerHead', replace_query_feat=True, num_queries=100))
