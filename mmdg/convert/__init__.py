"""Checkpoint conversions: official ViT weights -> timm (``vit``), released SoMA segmentation (``soma``) and detection
(``codino``) models and Rein models (``rein``) -> mmdg checkpoints, and what they share (``released``).
Submodules are imported where used: ``vit`` is needed by every backbone, the others only by converters."""
