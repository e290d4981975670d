"""CONTRIBUTING.md's recipes name files, tests and tables that exist: a recipe that drifts from the code fails."""
import os.path as osp
import re

from conftest import REPO

TEXT = open(osp.join(REPO, 'CONTRIBUTING.md')).read()


def test_every_named_path_and_test_exists():
    paths = set(re.findall(r'`((?:mmdg|tools|tests|configs|docs)/[\w/.<>-]+?)(?:::(\w+))?`', TEXT))
    assert len(paths) > 20
    for path, test in paths:
        if '<' in path:  # a pattern such as configs/dg_seg/<method>/
            assert osp.isdir(osp.join(REPO, path.split('<')[0])), path
            continue
        assert osp.exists(osp.join(REPO, path)), path
        if test:
            assert f'def {test}(' in open(osp.join(REPO, path)).read(), f'{path}::{test}'


def test_named_tables_and_names_exist():
    from mmdg.adapters import base, families
    from mmdg.convert import vit
    from mmdg.datasets import layouts
    from mmdg import testing
    assert families.FAMILIES and vit.ARCHS and layouts.LAYOUTS and testing.SEG_SOURCES
    for attr in ('mergeable', 'needs_weights', 'shares_input_branch', 'default_targets', 'make_shared',
                 'train_bias', 'aux_loss_name'):
        assert f'`{attr}`' in TEXT and hasattr(base.AdapterContract, attr), attr
    assert hasattr(vit, 'timm_to_official_dinov2') and hasattr(vit, 'timm_to_official_dinov3')
    conftest = open(osp.join(REPO, 'tests', 'conftest.py')).read()
    for name in ('def tiny_vit(', 'def dg_roots(', 'def det_roots(', 'def demo_model(', 'def run_tool(',
                 'def invoke_tool('):
        assert name in conftest, name
    assert 'markers' in open(osp.join(REPO, 'pytest.ini')).read()
    assert 'test-fast:' in open(osp.join(REPO, 'Makefile')).read()
