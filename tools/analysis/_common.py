"""What the analysis tools share: the repository on sys.path, a config read the way tools/train.py reads
it (mmdg registered through its default_scope / custom_imports) and quiet model building."""
import argparse
import logging
import os.path as osp
import sys

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
if REPO not in sys.path:
    sys.path.insert(0, REPO)


def add_cfg_options(parser: argparse.ArgumentParser) -> None:
    from mmengine.config import DictAction
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config entries, e.g. train_dataloader.batch_size=2')


def load_config(path: str, cfg_options=None):
    """The config with its options merged and its default scope set: mmseg's own analysis tools fail on
    mmdg configs because they force the 'mmseg' scope, where TimmViT and the mmdg datasets do not exist."""
    from mmengine.registry import init_default_scope
    from mmdg.utils.tool_config import load_tool_config
    logging.getLogger('mmengine').setLevel(logging.WARNING)  # model building logs every parameter's init
    cfg = load_tool_config(path, cfg_options)
    init_default_scope(cfg.get('default_scope', 'mmdg'))
    return cfg


def savefig(fig, path: str) -> None:
    import os
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    fig.savefig(path, dpi=90)
