"""The one place mmdg's version is written. setup.py reads this file as text (no import: importing mmdg
would need torch before it is installed); ``mmdg.__version__`` imports it."""
__version__ = '0.1.0'


def parse_version_info(version: str) -> tuple:
    """'0.1.0' -> (0, 1, 0); a suffix such as 'rc1' stays a string element."""
    parts = []
    for x in version.split('.'):
        parts.append(int(x) if x.isdigit() else x)
    return tuple(parts)


version_info = parse_version_info(__version__)
