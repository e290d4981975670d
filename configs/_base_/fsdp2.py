# Sharded training (mmdg's FSDP2Strategy on mmengine's FlexibleRunner): parameters, gradients and AdamW state
# split over the processes, each transformer block gathered just before it runs. Frozen weights are stored in
# bf16, trainable ones keep fp32 masters; the blocks compute in bf16 and reduce gradients in fp32.
# A config using it also sets model.backbone.grad_checkpointing=True (activation checkpointing).
# Launch: tools/dist_train.sh CONFIG NGPUS (docs/get_started.md, "Sharded training").
runner_type = 'FlexibleRunner'
strategy = dict(type='FSDP2Strategy', shard_classes=('Block', 'EvaBlock'), param_dtype='bfloat16',
                reduce_dtype='float32', frozen_dtype='bfloat16')
