"""Helpers shared by the OpenMMLab glue."""
