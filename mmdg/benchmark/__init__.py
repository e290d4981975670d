"""Benchmarks behind ``tools/benchmark.py``: the recipe suite (``recipe``: DINOv2-L / DINOv3-L + Mask2Former
built from the configs, trained through their optimizer wrappers) and the adapter suite (``adapters``: a bare
ViT per method, merged vs unmerged inference, SoRA's SVD), both timed round-robin (:mod:`.rounds`)."""
