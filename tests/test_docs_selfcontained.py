"""The repository stands on its own: no doc, comment or config points at a file outside it (the team's
internal notes), and every docs/*.md page is listed in the README's index."""
import glob
import os.path as osp
import re
import subprocess

import pytest

from conftest import REPO

pytestmark = pytest.mark.cli

#: The only outside path allowed: the optional real-format test fixtures, which tests skip without.
ALLOWED = re.compile(r'\.\./shared/fixtures')
OUTSIDE = re.compile(r'METHODS\.md|STACK\.md|\.\./shared/')


def _tracked_text_files():
    out = subprocess.run(['git', 'ls-files'], cwd=REPO, capture_output=True, text=True, check=True).stdout.split()
    return [f for f in out if f.endswith(('.py', '.md', '.sh', '.txt', '.cfg', '.toml', 'Makefile'))]


def test_no_reference_to_files_outside_the_repository():
    hits = []
    for rel in _tracked_text_files():
        if rel == 'tests/test_docs_selfcontained.py':
            continue
        with open(osp.join(REPO, rel), encoding='utf-8', errors='replace') as f:
            for n, line in enumerate(f, 1):
                if OUTSIDE.search(ALLOWED.sub('', line)):
                    hits.append(f'{rel}:{n}: {line.strip()[:100]}')
    assert not hits, 'references to files outside the repository:\n' + '\n'.join(hits)


def test_readme_indexes_every_doc():
    readme = open(osp.join(REPO, 'README.md')).read()
    missing = [osp.basename(p) for p in glob.glob(osp.join(REPO, 'docs', '*.md'))
               if f'docs/{osp.basename(p)}' not in readme]
    assert not missing, f'README.md does not link {missing}'
