"""Turn pip's resolution report into the exact list a wheelhouse must hold for one target machine.

    python -m mmdg.utils.wheelhouse_lock REPORT.json --requirements R1.txt R2.txt ... --out install.lock.txt \
        [--system-torch] [--present TARGET_FREEZE.txt] [--python-version 3.12]

REPORT.json comes from ``pip install --dry-run --ignore-installed --report`` over the requirement files
(online, on any machine). The lock leaves out what the target already has, so the offline install is a
plain ``pip install --no-deps -r install.lock.txt`` with nothing left to resolve there:
- ``--system-torch``: torch and torchvision, and every package needed only through them (CUDA wheels,
  triton, sympy, ...): the target brings its own torch (3 GB of wheels otherwise).
- ``--present``: the target's ``pip list --format=freeze``. A package listed there is left out when its
  version meets every requirement on it in the resolution, and so is what only it needs; one that does
  not is locked and installed over it. A bare name (version unknown) counts only where no requirement
  caps its version (``setuptools<81``, ``timm<1.1``: those caps are why they are pinned). Any OpenCV flavour counts
  for ``opencv-python`` (all four provide the same ``cv2``; containers often ship the headless one).
Only the standard library and ``packaging`` (which pip vendors) are used, so it runs before any install.
"""
import argparse
import json
import re
import sys
from collections import defaultdict

from mmdg.utils.atomic import atomic_open

try:
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name
    from packaging.version import InvalidVersion, Version
except ImportError:  # a bare interpreter: pip's vendored copy is the same library
    from pip._vendor.packaging.requirements import Requirement
    from pip._vendor.packaging.utils import canonicalize_name
    from pip._vendor.packaging.version import InvalidVersion, Version

TORCH_FAMILY = ('torch', 'torchvision')
OPENCV_FLAVOURS = ('opencv-python', 'opencv-python-headless', 'opencv-contrib-python',
                   'opencv-contrib-python-headless')


def read_requirement_files(paths):
    """The requirements named in pip requirement files (``-r`` followed, comments and options skipped)."""
    reqs = []
    for path in paths:
        with open(path) as f:
            for line in f:
                line = re.sub(r'(^|\s)#.*', '', line).strip()
                if not line:
                    continue
                if line.startswith(('-r ', '--requirement ')):
                    reqs += read_requirement_files([line.split(None, 1)[1]])
                elif not line.startswith('-'):
                    reqs.append(Requirement(line))
    return reqs


def read_present(path):
    """``{canonical name: Version or None}`` from a freeze-style list (``name==version``, ``name @ url``,
    or a bare name)."""
    present = {}
    with open(path) as f:
        for line in f:
            line = line.split('#', 1)[0].strip()
            if not line or line.startswith('-'):
                continue
            name, _, version = (line.partition('==') if '==' in line else (re.split(r'[\s@]', line)[0], '', ''))
            try:
                present[canonicalize_name(name)] = Version(version.split('+')[0]) if version else None
            except InvalidVersion:
                present[canonicalize_name(name)] = None
    return present


def lock(report: dict, root_requirements, system_torch=False, present=None, python_version=None):
    """Return ``(locked, left_out)``: ``[(name, version)]`` to install, and ``{name: why}`` for the rest."""
    present = dict(present or {})
    if any(canonicalize_name(f) in present for f in OPENCV_FLAVOURS):
        present.setdefault('opencv-python', None)
    env = dict(report['environment'])
    if python_version:  # pip reports the running interpreter's markers, not the --python-version target's
        env.update(python_version=python_version, python_full_version=python_version + '.0',
                   implementation_version=python_version + '.0')
    items = {canonicalize_name(i['metadata']['name']): i for i in report['install']}

    def requirements_of(name, extras):
        for text in items[name]['metadata'].get('requires_dist') or []:
            req = Requirement(text)
            if req.marker is None or any(req.marker.evaluate(dict(env, extra=e)) for e in {''} | set(extras)):
                yield req

    # Every requirement edge of the resolution, with its specifier, from the requested roots.
    specs = defaultdict(list)
    extras_of = defaultdict(set)
    roots = []
    for req in root_requirements:
        if req.marker is not None and not req.marker.evaluate(dict(env, extra='')):
            continue
        name = canonicalize_name(req.name)
        if name in items:
            roots.append(name)
            specs[name].append(req.specifier)
            extras_of[name] |= req.extras
    roots += [n for n, i in items.items() if i.get('requested') and n not in roots]
    edges = defaultdict(set)
    todo, seen = list(roots), set()
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        for req in requirements_of(name, extras_of[name]):
            child = canonicalize_name(req.name)
            if child not in items:
                continue
            edges[name].add(child)
            specs[child].append(req.specifier)
            if not req.extras <= extras_of[child]:
                extras_of[child] |= req.extras
                seen.discard(child)  # revisit with the new extras
            todo.append(child)

    def provided(name):
        if system_torch and name in TORCH_FAMILY:
            return 'the target\'s own torch'
        if name in present:
            version = present[name]
            if version is None:  # trusted for lower bounds only: an upper bound is there because newer broke
                if not any(spec.operator in ('<', '<=', '==', '~=', '===') for s in specs[name] for spec in s):
                    return 'present on the target (version not given)'
            elif all(version in s for s in specs[name]):
                return f'present on the target ({version})'
        return None

    locked, left_out, visited = [], {}, set()
    todo = list(roots)
    while todo:
        name = todo.pop()
        if name in visited:
            continue
        visited.add(name)
        why = provided(name)
        if why:
            left_out[name] = why
            continue
        locked.append((items[name]['metadata']['name'], items[name]['metadata']['version']))
        todo += sorted(edges[name])
    for name in items:
        if name not in visited:
            left_out[name] = 'needed only by what the target provides'
    return sorted(locked, key=lambda nv: canonicalize_name(nv[0])), left_out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('report')
    p.add_argument('--requirements', nargs='+', required=True, help='the requirement files that were resolved')
    p.add_argument('--out', required=True)
    p.add_argument('--system-torch', action='store_true')
    p.add_argument('--present', help="the target's `pip list --format=freeze`")
    p.add_argument('--python-version', help='the target interpreter (X.Y), when not this one')
    args = p.parse_args(argv)
    with open(args.report) as f:
        report = json.load(f)
    present = read_present(args.present) if args.present else None
    locked, left_out = lock(report, read_requirement_files(args.requirements), args.system_torch, present,
                            args.python_version)
    with atomic_open(args.out, 'w') as f:
        f.write(''.join(f'{n}=={v}\n' for n, v in locked))
    reasons = defaultdict(int)
    for why in left_out.values():
        reasons[why.split(' (')[0]] += 1
    summary = ', '.join(f'{k}: {v}' for k, v in sorted(reasons.items()))
    print(f'[wheelhouse] {len(locked)} packages to collect' + (f'; left out ({summary})' if summary else ''),
          file=sys.stderr)


if __name__ == '__main__':
    main()
