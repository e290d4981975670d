"""A deterministic generator of street-like scenes with Cityscapes train-id labels, in several domains.

The demo's data (no external files): the same scene grammar (sky, buildings, road in perspective,
sidewalks, vegetation, terrain, poles, signs, traffic lights, cars, trucks, buses, persons, riders on
bicycles) rendered in a synthetic *source* style and in unseen *target* styles (another palette and
texture, night, fog, rain). Labels are rendered first, colours afterwards, so every style shares the
geometry statistics and differs in appearance only: the domain gap DG methods are about.
"""
from __future__ import annotations

import json
import os
import os.path as osp
from dataclasses import dataclass
from multiprocessing import Pool
from typing import Dict, List, Sequence, Tuple

import cv2
import numpy as np

from .label_maps import CITYSCAPES_CLASSES as CLASSES
from .label_maps import TRAIN_ID as ID

from mmdg.utils.atomic import atomic_open

#: Base colours (RGB) of the synthetic source style, one per train id.
SOURCE_PALETTE = np.array([
    (128, 64, 128), (232, 35, 244), (70, 70, 70), (102, 102, 156), (190, 153, 153), (153, 153, 153),
    (250, 170, 30), (220, 220, 0), (35, 142, 35), (152, 251, 152), (70, 130, 180), (220, 20, 60),
    (255, 0, 0), (0, 0, 142), (0, 0, 70), (0, 60, 100), (0, 80, 100), (0, 0, 230), (119, 11, 32)],
    dtype=np.float32)

#: The rendering styles. ``source`` is the training domain of the demo; the rest are unseen targets.
DOMAINS = ('source', 'realistic', 'night', 'fog', 'rain')


@dataclass
class Scene:
    labels: np.ndarray          # (H, W) uint8 train ids
    instances: np.ndarray       # (H, W) int32, 0 = background
    instance_classes: Dict[int, int]
    depth: np.ndarray           # (H, W) float32 in [0, 1], 1 = far (horizon)


def _draw_scene(rng: np.random.Generator, h: int, w: int) -> Scene:
    lab = np.full((h, w), ID['sky'], np.uint8)
    inst = np.zeros((h, w), np.int32)
    classes: Dict[int, int] = {}
    horizon = int(h * rng.uniform(0.38, 0.5))
    vx = int(w * rng.uniform(0.35, 0.65))
    # buildings and vegetation behind the street
    x = 0
    while x < w:
        bw = int(rng.uniform(0.08, 0.25) * w)
        top = int(horizon - rng.uniform(0.1, 0.35) * h)
        kind = ID['vegetation'] if rng.random() < 0.25 else ID['building']
        if kind == ID['vegetation']:
            cv2.ellipse(lab, (x + bw // 2, top + (horizon - top) // 2), (bw // 2, (horizon - top) // 2 + 2), 0, 0, 360,
                        int(kind), -1)
        else:
            cv2.rectangle(lab, (x, max(top, 0)), (x + bw, horizon), int(kind), -1)
        x += bw
    # ground: sidewalks everywhere below the horizon, road as a perspective trapezoid, some terrain
    lab[horizon:] = ID['sidewalk']
    top_half = int(w * rng.uniform(0.03, 0.08))
    bottom_left, bottom_right = int(w * rng.uniform(-0.1, 0.15)), int(w * rng.uniform(0.85, 1.1))
    road = np.array([[bottom_left, h], [bottom_right, h], [vx + top_half, horizon], [vx - top_half, horizon]], np.int32)
    cv2.fillPoly(lab, [road], ID['road'])
    if rng.random() < 0.5:
        tx = int(rng.uniform(0, 0.2) * w)
        cv2.rectangle(lab, (0, h - int(h * rng.uniform(0.05, 0.2))), (tx, h), ID['terrain'], -1)
    rows = np.arange(h, dtype=np.float32)[:, None]
    depth = np.broadcast_to(np.clip((h - rows) / max(h - horizon, 1), 0, 1), (h, w)).astype(np.float32).copy()
    depth[:horizon] = 1.0

    def scale_at(y: float) -> float:  # apparent size at image row y (0 at the horizon)
        return max((y - horizon) / (h - horizon), 0.05)

    next_id = 1

    def add(cls_name: str) -> int:
        nonlocal next_id
        classes[next_id] = ID[cls_name]
        next_id += 1
        return next_id - 1

    # poles with signs / lights on the sidewalks
    for _ in range(rng.integers(1, 4)):
        y = int(rng.uniform(horizon + 0.15 * (h - horizon), h))
        s = scale_at(y)
        left_side = rng.random() < 0.5
        x = int(rng.uniform(0, 0.15) * w) if left_side else int(rng.uniform(0.85, 1.0) * w)
        ph, pw = int(0.7 * h * s) + 4, max(int(4 * s), 1)
        cv2.rectangle(lab, (x, y - ph), (x + pw, y), ID['pole'], -1)
        head = ID['traffic sign'] if rng.random() < 0.6 else ID['traffic light']
        hs = max(int(10 * s), 2)
        cv2.rectangle(lab, (x - hs // 2, y - ph - hs), (x + pw + hs // 2, y - ph + (hs if head == ID['traffic light'] else 0)),
                      int(head), -1)
    # objects, far to near so that near ones occlude
    objects = []
    for _ in range(rng.integers(2, 8)):
        y = float(rng.uniform(horizon + 0.08 * (h - horizon), h + 0.1 * h))
        objects.append((y, rng.choice(['car', 'car', 'car', 'truck', 'bus', 'person', 'person', 'rider'])))
    for y, kind in sorted(objects):
        s = scale_at(y)
        y = int(y)
        if kind in ('car', 'truck', 'bus'):
            ow = int({'car': 90, 'truck': 110, 'bus': 140}[kind] * s * w / 256)
            oh = int({'car': 45, 'truck': 75, 'bus': 85}[kind] * s * h / 128)
            cx = int(vx + (rng.uniform(-0.9, 0.9)) * (bottom_right - bottom_left) * 0.5 * s)
            i = add(kind)
            for m, v in ((lab, ID[kind]), (inst, i)):
                cv2.rectangle(m, (cx - ow // 2, y - oh), (cx + ow // 2, y - oh // 5), int(v), -1)
                if kind == 'car':  # cabin
                    cv2.rectangle(m, (cx - ow // 3, y - oh - oh // 3), (cx + ow // 3, y - oh), int(v), -1)
                r = max(oh // 5, 1)
                cv2.circle(m, (cx - ow // 3, y - r), r, int(v), -1)
                cv2.circle(m, (cx + ow // 3, y - r), r, int(v), -1)
        else:
            left_side = rng.random() < 0.5
            cx = int(rng.uniform(0.02, 0.2) * w) if left_side else int(rng.uniform(0.8, 0.98) * w)
            ph = int(70 * s * h / 128) + 3
            pw = max(ph // 4, 1)
            if kind == 'rider':
                b = add('bicycle')
                for m, v in ((lab, ID['bicycle']), (inst, b)):
                    r = max(ph // 6, 1)
                    cv2.circle(m, (cx - pw, y - r), r, int(v), max(r // 3, 1))
                    cv2.circle(m, (cx + pw, y - r), r, int(v), max(r // 3, 1))
                    cv2.line(m, (cx - pw, y - r), (cx + pw, y - r), int(v), max(r // 3, 1))
                y -= ph // 4
            i = add('rider' if kind == 'rider' else 'person')
            for m, v in ((lab, ID['rider' if kind == 'rider' else 'person']), (inst, i)):
                cv2.rectangle(m, (cx - pw // 2, y - int(ph * 0.8)), (cx + pw // 2, y), int(v), -1)
                cv2.circle(m, (cx, y - int(ph * 0.85)), max(pw // 2, 1), int(v), -1)
    inst[~np.isin(lab, list(set(classes.values())))] = 0
    return Scene(lab, inst, classes, depth)


def _value_noise(rng: np.random.Generator, h: int, w: int, cells: int) -> np.ndarray:
    small = rng.standard_normal((max(h // cells, 2), max(w // cells, 2))).astype(np.float32)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)


def _domain_palette(domain: str) -> np.ndarray:
    """Each target style is a fixed, seeded recolouring of the source palette."""
    if domain == 'source':
        return SOURCE_PALETTE.copy()
    r = np.random.default_rng(sum(map(ord, domain)) * 7919)  # stable across runs (unlike hash())
    mix = np.eye(3, dtype=np.float32) * 0.6 + r.uniform(0, 0.25, (3, 3)).astype(np.float32)
    pal = SOURCE_PALETTE @ mix.T + r.uniform(-30, 30, 3).astype(np.float32)
    grey = pal.mean(1, keepdims=True)
    return np.clip(grey + 0.6 * (pal - grey), 0, 255)  # the real-looking targets are less saturated


def render(scene: Scene, domain: str, rng: np.random.Generator) -> np.ndarray:
    """The RGB uint8 image of ``scene`` in ``domain``'s style."""
    if domain not in DOMAINS:
        raise ValueError(f'unknown domain {domain!r}; known: {DOMAINS}')
    h, w = scene.labels.shape
    pal = _domain_palette('realistic' if domain in ('night', 'fog', 'rain') else domain)
    img = pal[scene.labels].copy()
    for i, c in scene.instance_classes.items():  # every vehicle its own paint
        if CLASSES[c] in ('car', 'truck', 'bus'):
            img[scene.instances == i] = rng.uniform(20, 235, 3)
    texture = 6 if domain == 'source' else 18
    img += texture * _value_noise(rng, h, w, 4)[..., None] + 0.5 * texture * rng.standard_normal((h, w, 1))
    building = scene.labels == ID['building']
    windows = ((np.arange(h)[:, None] // 4) % 3 == 0) & ((np.arange(w)[None] // 5) % 3 == 0)
    img[building & windows] *= 0.6
    sky = scene.labels == ID['sky']
    img[sky] += (40 * (1 - np.arange(h, dtype=np.float32) / h))[:, None].repeat(w, 1)[sky][:, None]
    if domain == 'night':
        img *= 0.25
        img[..., 2] += 12
        lights = building & windows & (_value_noise(rng, h, w, 8) > 0.8)
        img[lights] = (255, 220, 140)
        for i, c in scene.instance_classes.items():
            if CLASSES[c] in ('car', 'truck', 'bus'):
                ys, xs = np.nonzero(scene.instances == i)
                if len(ys):
                    cv2.circle(img, (int(xs.min()) + 1, int(ys.max()) - 2), 2, (255, 255, 200), -1)
                    cv2.circle(img, (int(xs.max()) - 1, int(ys.max()) - 2), 2, (255, 255, 200), -1)
    elif domain == 'fog':
        t = (0.25 + 0.7 * scene.depth)[..., None]
        img = (1 - t) * img + t * np.float32(200)
    elif domain == 'rain':
        img *= 0.7
        streaks = np.zeros((h, w), np.float32)
        for _ in range(h * w // 150):
            x0, y0 = int(rng.integers(0, w)), int(rng.integers(0, h))
            cv2.line(streaks, (x0, y0), (x0 - 2, y0 + 8), 1.0, 1)
        img += 60 * streaks[..., None]
        img = cv2.GaussianBlur(img, (3, 3), 0)
    elif domain == 'realistic':
        img = cv2.GaussianBlur(img, (3, 3), 0)
    return np.clip(img, 0, 255).astype(np.uint8)


def boxes_of(scene: Scene) -> List[Dict]:
    """Visible boxes ``(x1, y1, x2, y2)`` of every instance, in pixels (inclusive-exclusive)."""
    out = []
    for i, c in sorted(scene.instance_classes.items()):
        ys, xs = np.nonzero(scene.instances == i)
        if len(ys) >= 4:
            out.append(dict(label=CLASSES[c], bbox=[int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1]))
    return out


def make_sample(domain: str, split: str, index: int, size: Tuple[int, int] = (128, 256)):
    """(image RGB, train-id labels, boxes) of one sample; a pure function of its arguments."""
    seed = [DOMAINS.index(domain), ('train', 'val').index(split), index]
    rng = np.random.default_rng(seed)
    scene = _draw_scene(rng, *size)
    return render(scene, domain, rng), scene.labels, boxes_of(scene)


def sample_name(domain: str, index: int) -> str:
    return f'{domain}_{index:06d}_000019'


def _write_one(args) -> None:
    root, domain, split, index, size = args
    img, lab, boxes = make_sample(domain, split, index, size)
    name = sample_name(domain, index)
    img_dir = osp.join(root, domain, 'leftImg8bit', split, domain)
    gt_dir = osp.join(root, domain, 'gtFine', split, domain)
    box_dir = osp.join(root, domain, 'boxes', split, domain)
    cv2.imwrite(osp.join(img_dir, f'{name}_leftImg8bit.png'), img[..., ::-1])
    cv2.imwrite(osp.join(gt_dir, f'{name}_gtFine_labelTrainIds.png'), lab)
    with atomic_open(osp.join(box_dir, f'{name}.json'), 'w') as f:
        json.dump(dict(height=int(lab.shape[0]), width=int(lab.shape[1]), objects=boxes), f)


def write_cityscapes_layout(root: str, domains: Sequence[str] = DOMAINS, splits: Dict[str, int] = None,
                            size: Tuple[int, int] = (128, 256), workers: int = 0, progress: bool = True) -> Dict:
    """Write ``root/<domain>/{leftImg8bit,gtFine}/<split>/<domain>/*`` (Cityscapes layout, train ids) and
    per-image boxes under ``root/<domain>/boxes``. Files already present are kept (idempotent)."""
    splits = splits or dict(train=200, val=50)
    jobs = []
    for d in domains:
        for split, n in splits.items():
            for sub in ('leftImg8bit', 'gtFine', 'boxes'):
                os.makedirs(osp.join(root, d, sub, split, d), exist_ok=True)
            for i in range(n):
                if not osp.exists(osp.join(root, d, 'gtFine', split, d, f'{sample_name(d, i)}_gtFine_labelTrainIds.png')):
                    jobs.append((root, d, split, i, tuple(size)))
    if jobs:
        workers = workers or min(os.cpu_count() or 1, 8)
        try:
            from tqdm import tqdm
        except ImportError:  # pragma: no cover
            progress = False
        with Pool(workers) if workers > 1 else _Serial() as pool:
            it = pool.imap_unordered(_write_one, jobs, chunksize=8)
            for _ in (tqdm(it, total=len(jobs), desc='demo data', unit='img') if progress else it):
                pass
    meta = dict(classes=CLASSES, domains=list(domains), splits=splits, size=list(size))
    with atomic_open(osp.join(root, 'meta.json'), 'w') as f:
        json.dump(meta, f, indent=1)
    return meta


class _Serial:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    @staticmethod
    def imap_unordered(fn, jobs, chunksize=1):
        return map(fn, jobs)


# ---------------------------------------------------------------------------------------------------
# Pre-training data for the demo backbone: the scene grammar rendered in random appearances.

#: Cityscapes' seven categories (flat, construction, object, nature, sky, human, vehicle), as the
#: group index of each train id: the pre-training task, coarser than (and different from) the demo's.
COARSE_GROUPS = ('flat', 'construction', 'object', 'nature', 'sky', 'human', 'vehicle')
COARSE_OF_TRAIN_ID = np.array([0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 4, 5, 5, 6, 6, 6, 6, 6, 6], np.uint8)
#: First entry of every pre-training seed: a stream of its own, disjoint from the demo's
#: ``[domain, split, index]`` seeds, so pre-training never draws a demo train or val scene.
PRETRAIN_STREAM = 1_000_003


def render_random_style(scene: Scene, rng: np.random.Generator) -> np.ndarray:
    """``scene`` in a freshly drawn appearance: random per-class palette and per-object paint, texture,
    lighting, colour cast, and (each by chance, with random strength) darkness with point lights, haze,
    streaks, blur and sensor noise. The kinds of change a foundation model has seen in its photos; none
    of the demo's fixed styles (their palettes and parameters) is drawn here."""
    h, w = scene.labels.shape
    img = rng.uniform(0, 255, (len(CLASSES), 3)).astype(np.float32)[scene.labels]
    for i in scene.instance_classes:
        if rng.random() < 0.7:
            img[scene.instances == i] = rng.uniform(0, 255, 3)
    amp = rng.uniform(0, 40)
    cells = int(rng.choice([2, 4, 8, 16]))
    img += amp * _value_noise(rng, h, w, cells)[..., None] * rng.uniform(0.5, 1.5, 3).astype(np.float32)
    if rng.random() < 0.3:  # a regular pattern (bricks, tiles, windows) on one random class
        mask = scene.labels == rng.integers(0, len(CLASSES))
        period = int(rng.integers(3, 9))
        grid = ((np.arange(h)[:, None] // period) % 2) ^ ((np.arange(w)[None] // period) % 2)
        img[mask & (grid == 1)] *= rng.uniform(0.4, 0.9)
    gain = rng.uniform(0.5, 1.3)
    img = img * gain + rng.uniform(-35, 35, 3).astype(np.float32)
    img += rng.uniform(-40, 40) * (np.linspace(-1, 1, h, dtype=np.float32)[:, None, None])  # vertical light
    if rng.random() < 0.25:  # darkness with a few bright spots
        img *= rng.uniform(0.15, 0.5)
        for _ in range(int(rng.integers(0, 12))):
            cv2.circle(img, (int(rng.integers(0, w)), int(rng.integers(0, h))), int(rng.integers(1, 4)),
                       tuple(float(v) for v in rng.uniform(150, 255, 3)), -1)
    if rng.random() < 0.25:  # haze that thickens with distance
        t = np.clip(rng.uniform(0.0, 0.4) + rng.uniform(0.2, 0.8) * scene.depth, 0, 0.95)[..., None]
        img = (1 - t) * img + t * rng.uniform(100, 240, 3).astype(np.float32)
    if rng.random() < 0.25:  # streaks at a random angle
        streaks = np.zeros((h, w), np.float32)
        dx, dy = int(rng.integers(-4, 5)), int(rng.integers(3, 12))
        for _ in range(int(h * w / rng.uniform(80, 400))):
            x0, y0 = int(rng.integers(0, w)), int(rng.integers(0, h))
            cv2.line(streaks, (x0, y0), (x0 + dx, y0 + dy), 1.0, 1)
        img += rng.uniform(20, 80) * streaks[..., None]
    if rng.random() < 0.35:
        k = int(rng.choice([3, 5]))
        img = cv2.GaussianBlur(img, (k, k), 0)
    img += rng.uniform(0, 12) * rng.standard_normal((h, w, 3)).astype(np.float32)
    img = np.clip(img, 0, 255)
    if rng.random() < 0.5:  # contrast curve
        img = 255 * (img / 255) ** rng.uniform(0.6, 1.6)
    if rng.random() < 0.1:
        img = np.repeat(img.mean(2, keepdims=True), 3, 2)
    return np.clip(img, 0, 255).astype(np.uint8)


def make_pretrain_sample(index: int, size: Tuple[int, int] = (128, 256)) -> Tuple[np.ndarray, np.ndarray]:
    """(image RGB uint8, coarse-group labels uint8) of pre-training sample ``index``; a pure function of
    its arguments (seeded by ``[PRETRAIN_STREAM, index]``)."""
    rng = np.random.default_rng([PRETRAIN_STREAM, index])
    scene = _draw_scene(rng, *size)
    if rng.random() < 0.5:  # mirrored scenes: the grammar puts nothing on a fixed side
        scene = Scene(scene.labels[:, ::-1].copy(), scene.instances[:, ::-1].copy(), scene.instance_classes,
                      scene.depth[:, ::-1].copy())
    return render_random_style(scene, rng), COARSE_OF_TRAIN_ID[scene.labels]
