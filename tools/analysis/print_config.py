"""Print a config with its _base_ files and --cfg-options merged: ``python tools/analysis/print_config.py CONFIG``.

    --out FILE   also write the merged config (a .py, .json or .yaml file mmengine can read back)
"""
import argparse

from mmdg.utils.tool_config import add_cfg_options, load_scoped_config as load_config


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('config')
    p.add_argument('--out', help='write the merged config here')
    add_cfg_options(p)
    args = p.parse_args(argv)
    from mmdg.utils.tool_config import input_errors_as_messages
    with input_errors_as_messages():
        cfg = load_config(args.config, args.cfg_options)
        cfg.pop('work_dir', None)  # set by the tools' loader, not part of the user's config
        cfg.pop('launcher', None)
        print(cfg.pretty_text)
        if args.out:
            cfg.dump(args.out)
            print(f'-> {args.out}')


if __name__ == '__main__':
    main()
