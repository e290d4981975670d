"""Evaluate one checkpoint on several target domains with mmengine's test loop (``Runner.test()``):
per-domain aAcc / mIoU / mAcc and per-class IoU / Acc, or for a detection config (``task = 'det'``)
per-domain VOC mAP@0.5 (11-point) and per-class AP; labelled pictures through the config's visualizer.

    python tools/cross_domain_eval.py CONFIG CHECKPOINT [--targets realistic night ...] [--work-dir DIR]
        [--out-dir DIR] [--slide --crop 512 --stride 341] [--tta] [--amp] [--overlays 4] [--batch-size 4]
    python -m torch.distributed.run --nproc_per_node 8 tools/cross_domain_eval.py CONFIG CHECKPOINT --launcher pytorch

Targets are the names of the config's ``target_datasets`` dict (default: all of them), evaluated in one
run over a ``MultiDomainDataset`` with the config's test loader settings (batch size, workers).
Each run writes into a folder of its own, ``<work dir or checkpoint folder>/cross_domain/<checkpoint
name>/<timestamp>/`` (or ``--out-dir``, which must be new or empty): ``results.md`` (tables),
``results.csv``, ``results.json``, ``vis/<domain>/*.png`` and the run's full log. Works with full
checkpoints, adapter-only ones (the config's ``pretrained`` backbone is rebuilt first) and merged ones
from ``tools/merge_adapters.py`` (evaluated on the config without adapters).
"""
from mmdg.apis.cross_domain import main

if __name__ == '__main__':
    main(description=__doc__)
