from setuptools import find_packages, setup

setup(
    name='mmdg',
    version='0.1.0',
    description='Domain-generalized segmentation and detection with low-rank adapted ViTs (OpenMMLab + timm)',
    packages=find_packages(include=['mmdg', 'mmdg.*']),
    python_requires='>=3.9',
    # The pinned stack (torch, mmcv with ops, mmengine, mmseg, mmdet, timm) is installed by
    # `make install`; see requirements/.
    install_requires=[],
    license='Apache-2.0',
)
