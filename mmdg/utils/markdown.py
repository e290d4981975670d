"""Regenerated tables inside hand-written docs: the text between two HTML-comment markers."""
import re

from mmdg.utils.atomic import atomic_open


def replace_between_markers(path: str, begin: str, end: str, text: str) -> None:
    """Replace what lies between ``begin`` and ``end`` in the file ``path`` with ``text``."""
    doc = open(path).read()
    if begin not in doc or end not in doc:
        raise SystemExit(f'{path} has no {begin} ... {end} markers')
    doc = re.sub(re.escape(begin) + '.*?' + re.escape(end), lambda _: f'{begin}\n{text}\n{end}', doc, flags=re.S)
    with atomic_open(path, 'w') as f:
        f.write(doc)
