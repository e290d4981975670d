"""docs/parity.md: every DG segmentation config beside the official recipe it reproduces, value by value.

    python tools/parity.py            # regenerate docs/parity.md from the resolved configs
    python tools/parity.py --check    # exit 1 if docs/parity.md is stale or a difference is undocumented

The official values below were read from the public SoRA/SoMA repository (ysj9909/SoMA, the files named
in ``OFFICIAL[...]['source']``) and are written in the words this tool uses to describe our resolved
configs, so that the two columns compare as text. Every row where they differ must have a line in
``DOCUMENTED`` saying why and which switch gives the official behaviour; ``--check`` (and the test suite)
fail otherwise, so a config that drifts from the recipe cannot go unnoticed.
"""
from mmdg.utils.parity import main

if __name__ == '__main__':
    main()
