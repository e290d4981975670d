"""Check an mmdg installation: ``python tools/check_install.py --verify`` (see mmdg.utils.install_check)."""
import sys

from mmdg.utils.install_check import main

if __name__ == '__main__':
    sys.exit(main())
