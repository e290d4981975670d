"""docs/parity.md: every DG config beside the official recipe it reproduces, value by value.

    python tools/parity.py            # regenerate docs/parity.md from the resolved configs
    python tools/parity.py --check    # exit 1 if docs/parity.md is stale or a difference is undocumented

The official values, and the documented reasons where mmdg differs, are in mmdg/utils/parity.py.
"""
from mmdg.utils.parity import main

if __name__ == '__main__':
    main()
