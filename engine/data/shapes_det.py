"""``shapes-det``: the shapes glyphs, one to four an image, with a box each (SPEC §7).

The detection twin of ``shapes-seg``: classes are the five glyphs (no background
class), labels are rows ``(class, x1, y1, x2, y2)`` in pixels, padded with class -1
(see engine/detection's contract). Glyph sizes vary about fourfold (boxes of roughly
8 to 28 pixels in a 64×64 image), so a head's anchors matter.

A box is the glyph's drawn extent, not its nominal disc: it encloses exactly the
pixels the glyph covers at least half of (the rule ``shapes-seg`` labels pixels by),
so what a detector sees is what it must predict. Glyphs are placed so that their
bounding discs do not overlap; a slot whose glyph finds no free place stays empty.
Each glyph is rendered in a small window around its centre, all glyphs of one class
and slot at once, so 3,000 images take about a second.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from .sets import DatasetError
from .shapes import CLASSES, glyph_coverage

DEFAULTS: dict[str, Any] = {"size": 64, "count": 3000, "noise": 0.1}
MAX_GLYPHS = 4
_TRIES = 16                 # candidate centres per glyph before giving the slot up
_EXTENT = 1.3               # farthest stroke point from the centre, in radii (squash + turn)
_RADIUS = (3.5, 12.5)       # half a glyph's extent, in pixels of a 64×64 image
_WIDTH = (0.2, 0.3)         # stroke width as a share of the radius …
_MIN_WIDTH = 1.2            # … but never thinner than this (pixels at 64×64)


def _options(options: Mapping[str, Any] | None) -> tuple[int, int, float]:
    opts = dict(DEFAULTS)
    for key, value in (options or {}).items():
        if key not in DEFAULTS:
            raise DatasetError(f"shapes-det has no option {key!r}; its options are "
                               f"{', '.join(DEFAULTS)}")
        opts[key] = value
    try:
        size, count, noise = int(opts["size"]), int(opts["count"]), float(opts["noise"])
    except (TypeError, ValueError):
        raise DatasetError(f"shapes-det options must be numbers, got {opts}") from None
    if not 32 <= size <= 512:
        raise DatasetError(f"shapes-det size {size} is out of range: use 32 to 512 pixels")
    if count < 1:
        raise DatasetError(f"shapes-det count {count} must be at least 1")
    if not 0 <= noise <= 1:
        raise DatasetError(f"shapes-det noise {noise} is out of range: use 0 to 1")
    return size, count, noise


def _glyph_names(classes: Sequence[str] | None) -> list[str]:
    """The glyphs to draw, in the order that numbers them."""
    if classes is None:
        return list(CLASSES)
    names = [str(c) for c in ([classes] if isinstance(classes, str) else classes)]
    for name in names:
        if name not in CLASSES:
            raise DatasetError(f"shapes-det has no class {name!r}; its classes are "
                               f"{', '.join(CLASSES)}")
    if len(set(names)) != len(names) or not names:
        raise DatasetError(f"name each shapes-det class once (at least one), got {names}")
    return names


def _place(n: int, size: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Glyph parameters [MAX_GLYPHS, n]; ``placed`` says which slots hold a glyph.

    The first slot always holds one, so every image has at least one box."""
    unit = size / 64
    shape = (MAX_GLYPHS, n)
    radius = rng.uniform(*_RADIUS, shape) * unit
    p = {"radius": radius,
         "width": np.maximum(radius * rng.uniform(*_WIDTH, shape), _MIN_WIDTH * unit),
         "angle": np.deg2rad(rng.uniform(-20, 20, shape)),
         "aspect": rng.uniform(0.8, 1.2, shape),
         "ink": rng.uniform(0.6, 1.0, shape),
         "kind": rng.integers(0, 1 << 30, shape)}
    margin = _EXTENT * p["radius"] + p["width"] / 2 + 1.0
    wanted = np.arange(MAX_GLYPHS)[:, None] < rng.integers(1, MAX_GLYPHS + 1, n)[None]
    cx, cy = np.zeros(shape), np.zeros(shape)
    placed = np.zeros(shape, dtype=bool)
    for slot in range(MAX_GLYPHS):
        m = margin[slot]
        tx = rng.uniform(m, size - m, (_TRIES, n))
        ty = rng.uniform(m, size - m, (_TRIES, n))
        ok = np.ones((_TRIES, n), dtype=bool)
        for prev in range(slot):
            gap = np.hypot(tx - cx[prev], ty - cy[prev]) >= m + margin[prev]
            ok &= gap | ~placed[prev]
        first = ok.argmax(axis=0)
        cols = np.arange(n)
        cx[slot], cy[slot] = tx[first, cols], ty[first, cols]
        placed[slot] = wanted[slot] & ok.any(axis=0)
    p.update(cx=cx, cy=cy, placed=placed)
    return p


def _extent(cover: np.ndarray) -> np.ndarray:
    """Tight boxes [n, 4] (x1, y1, x2, y2, pixel edges, window coordinates) around the
    pixels each glyph covers at least half of (its most covered pixel, should a very
    thin stroke reach half nowhere)."""
    top = cover.reshape(len(cover), -1).max(axis=1)
    ink = cover >= np.minimum(top, 0.5)[:, None, None]
    cols, rows = ink.any(axis=1), ink.any(axis=2)             # [n, window] each
    window = cover.shape[-1]
    x1, y1 = cols.argmax(axis=1), rows.argmax(axis=1)
    x2 = window - cols[:, ::-1].argmax(axis=1)
    y2 = window - rows[:, ::-1].argmax(axis=1)
    return np.stack([x1, y1, x2, y2], axis=1).astype(np.float32)


def make_shapes_det(*, seed: int = 0, classes: Sequence[str] | None = None,
                    options: Mapping[str, Any] | None = None
                    ) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Images uint8 [N, 1, S, S], boxes float32 [N, M, 5] and the class names.

    Rows are ``(class, x1, y1, x2, y2)`` in pixels, the image's boxes first, then
    padding rows ``(-1, 0, 0, 0, 0)``; M is the most boxes an image got. Deterministic
    for a seed. ``classes`` picks the glyphs drawn, numbered in the given order.
    """
    size, count, noise = _options(options)
    glyphs = _glyph_names(classes)
    rng = np.random.default_rng(seed)
    p = _place(count, size, rng)
    kind = p["kind"] % len(glyphs)
    unit = size / 64
    r_max = _RADIUS[1] * unit
    half = math.ceil(_EXTENT * r_max + max(_WIDTH[1] * r_max, _MIN_WIDTH * unit) / 2 + 1.0)
    window = 2 * half
    canvas = np.zeros((count, size + window, size + window), dtype=np.float32)
    boxes = np.zeros((MAX_GLYPHS, count, 5), dtype=np.float32)
    boxes[..., 0] = -1
    steps = np.arange(window)
    for slot in range(MAX_GLYPHS):
        for label, name in enumerate(glyphs):
            idx = np.flatnonzero(p["placed"][slot] & (kind[slot] == label))
            if len(idx) == 0:
                continue
            cx, cy = p["cx"][slot, idx], p["cy"][slot, idx]
            x0, y0 = np.floor(cx).astype(int) - half, np.floor(cy).astype(int) - half
            cover = glyph_coverage(name, cx - x0, cy - y0, p["radius"][slot, idx],
                                   p["width"][slot, idx], p["angle"][slot, idx],
                                   p["aspect"][slot, idx], window)
            rows = (y0 + half)[:, None, None] + steps[None, :, None]
            cols = (x0 + half)[:, None, None] + steps[None, None, :]
            at = (idx[:, None, None], rows, cols)
            ink = (cover * p["ink"][slot, idx][:, None, None]).astype(np.float32)
            canvas[at] = np.maximum(canvas[at], ink)
            box = _extent(cover)
            box[:, 0::2] += x0[:, None]
            box[:, 1::2] += y0[:, None]
            boxes[slot, idx, 0] = label
            boxes[slot, idx, 1:] = np.clip(box, 0, size)
    img = canvas[:, half:half + size, half:half + size]
    if noise > 0:
        img = img + rng.normal(0.0, noise, img.shape).astype(np.float32)
    x = (np.clip(img, 0.0, 1.0) * 255 + 0.5).astype(np.uint8)[:, None]
    # Each image's boxes first: a stable sort of the slots by "empty".
    y = boxes.transpose(1, 0, 2)
    order = np.argsort(y[:, :, 0] < 0, axis=1, kind="stable")
    y = np.take_along_axis(y, order[:, :, None], axis=1)
    m = max(1, int((y[:, :, 0] >= 0).sum(axis=1).max()))
    return np.ascontiguousarray(x), np.ascontiguousarray(y[:, :m]), list(glyphs)
