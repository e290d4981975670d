import os.path as osp

from setuptools import find_packages, setup


def read_version():
    """mmdg/version.py's ``__version__``, read as text: importing mmdg would import torch, which a fresh
    environment may not have yet."""
    path = osp.join(osp.dirname(osp.abspath(__file__)), 'mmdg', 'version.py')
    scope = {}
    with open(path) as f:
        exec(compile(f.read(), path, 'exec'), scope)
    return scope['__version__']


def runtime_requirements():
    """requirements/runtime.txt, the one list of what mmdg needs besides torch and mmcv (those two are
    version-coupled and installed first, by `make install` or by the user: conda + `mim install mmcv`)."""
    path = osp.join(osp.dirname(osp.abspath(__file__)), 'requirements', 'runtime.txt')
    with open(path) as f:
        return [line.split('#')[0].strip() for line in f if line.split('#')[0].strip()]


setup(
    name='mmdg',
    version=read_version(),
    description='Domain-generalized segmentation and detection with low-rank adapted ViTs (OpenMMLab + timm)',
    packages=find_packages(include=['mmdg', 'mmdg.*']),
    python_requires='>=3.9',
    # torch / torchvision and mmcv (compiled against that torch) stay with the installer.
    install_requires=runtime_requirements(),
    license='Apache-2.0',
    license_files=['LICENSE'],
)
