"""Regenerated tables inside hand-written docs: the text between two HTML-comment markers."""
import re

from mmdg.utils.atomic import atomic_open


def between_markers(path: str, begin: str, end: str) -> str:
    """What lies between ``begin`` and ``end`` in the file ``path`` (stripped)."""
    doc = open(path).read()
    m = re.search(re.escape(begin) + '(.*?)' + re.escape(end), doc, flags=re.S)
    if m is None:
        raise SystemExit(f'{path} has no {begin} ... {end} markers')
    return m.group(1).strip()


def write_or_check(path: str, begin: str, end: str, text: str, check: bool, tool: str) -> None:
    """``--check``: exit 1 naming the tool to run when the table in ``path`` is not ``text``; else write it."""
    if check:
        if between_markers(path, begin, end) != text.strip():
            raise SystemExit(f'error: the table in {path} is stale: run python {tool} --write {path}')
        print(f'{path}: the table is current')
    else:
        replace_between_markers(path, begin, end, text)


def replace_between_markers(path: str, begin: str, end: str, text: str) -> None:
    """Replace what lies between ``begin`` and ``end`` in the file ``path`` with ``text``."""
    doc = open(path).read()
    if begin not in doc or end not in doc:
        raise SystemExit(f'{path} has no {begin} ... {end} markers')
    doc = re.sub(re.escape(begin) + '.*?' + re.escape(end), lambda _: f'{begin}\n{text}\n{end}', doc, flags=re.S)
    with atomic_open(path, 'w') as f:
        f.write(doc)
