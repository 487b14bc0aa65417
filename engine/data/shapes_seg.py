"""``shapes-seg``: the shapes glyphs, one to three an image, with a per-pixel class mask.

The segmentation twin of ``shapes`` (SPEC §7): class 0 is the background, then the
five glyphs. Glyphs are placed so that their bounding discs do not overlap, so every
pixel belongs to at most one glyph and the mask says exactly what was drawn: a pixel
is labelled with a glyph's class where the glyph covers at least half of it.

Each glyph is rendered only in a small window around its centre (a quarter of a 64×64
image) and all glyphs of one class and slot at once, so a few thousand images take
about a second.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from .sets import DatasetError
from .shapes import CLASSES as GLYPHS
from .shapes import glyph_coverage

BACKGROUND = "background"
CLASSES: tuple[str, ...] = (BACKGROUND, *GLYPHS)
DEFAULTS: dict[str, Any] = {"size": 64, "count": 2000, "noise": 0.1}
MAX_GLYPHS = 3
_TRIES = 12                 # candidate centres per glyph before giving the slot up
_EXTENT = 1.3               # farthest stroke point from the centre, in radii (squash + turn)


def _options(options: Mapping[str, Any] | None) -> tuple[int, int, float]:
    opts = dict(DEFAULTS)
    for key, value in (options or {}).items():
        if key not in DEFAULTS:
            raise DatasetError(f"shapes-seg has no option {key!r}; its options are "
                               f"{', '.join(DEFAULTS)}")
        opts[key] = value
    try:
        size, count, noise = int(opts["size"]), int(opts["count"]), float(opts["noise"])
    except (TypeError, ValueError):
        raise DatasetError(f"shapes-seg options must be numbers, got {opts}") from None
    if not 32 <= size <= 512:
        raise DatasetError(f"shapes-seg size {size} is out of range: use 32 to 512 pixels")
    if count < 1:
        raise DatasetError(f"shapes-seg count {count} must be at least 1")
    if not 0 <= noise <= 1:
        raise DatasetError(f"shapes-seg noise {noise} is out of range: use 0 to 1")
    return size, count, noise


def _glyph_names(classes: Sequence[str] | None) -> list[str]:
    """The glyphs to draw; ``background`` may be named (it is always class 0)."""
    if classes is None:
        return list(GLYPHS)
    names = [str(c) for c in ([classes] if isinstance(classes, str) else classes)]
    for name in names:
        if name not in CLASSES:
            raise DatasetError(f"shapes-seg has no class {name!r}; its classes are "
                               f"{', '.join(CLASSES)}")
    if len(set(names)) != len(names):
        raise DatasetError(f"name each shapes-seg class once, got {names}")
    glyphs = [n for n in names if n != BACKGROUND]
    if not glyphs:
        raise DatasetError("shapes-seg needs at least one glyph class to draw besides "
                           f"background: choose from {', '.join(GLYPHS)}")
    return glyphs


def _place(n: int, size: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Glyph parameters [MAX_GLYPHS, n] with ``placed`` saying which slots hold a glyph."""
    unit = size / 64
    shape = (MAX_GLYPHS, n)
    p = {"radius": rng.uniform(5.0, 10.0, shape) * unit,
         "width": rng.uniform(1.5, 3.0, shape) * unit,
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
    p.update(cx=cx, cy=cy, margin=margin, placed=placed)
    return p


def make_shapes_seg(*, seed: int = 0, classes: Sequence[str] | None = None,
                    options: Mapping[str, Any] | None = None
                    ) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Images uint8 [N, 1, S, S], masks uint8 [N, S, S] and the class names.

    Deterministic for a seed. ``classes`` picks the glyphs drawn (``background`` is
    always class 0, the glyphs follow in the given order).
    """
    size, count, noise = _options(options)
    glyphs = _glyph_names(classes)
    rng = np.random.default_rng(seed)
    p = _place(count, size, rng)
    kind = p["kind"] % len(glyphs)
    half = math.ceil(_EXTENT * 10.0 * size / 64 + 1.5 * size / 64 + 1.0)
    window = 2 * half
    canvas = np.zeros((count, size + window, size + window), dtype=np.float32)
    labels = np.zeros((count, size + window, size + window), dtype=np.uint8)
    steps = np.arange(window)
    for slot in range(MAX_GLYPHS):
        for label, name in enumerate(glyphs, start=1):
            idx = np.flatnonzero(p["placed"][slot] & (kind[slot] == label - 1))
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
            labels[at] = np.where(cover >= 0.5, np.uint8(label), labels[at])
    img = canvas[:, half:half + size, half:half + size]
    mask = np.ascontiguousarray(labels[:, half:half + size, half:half + size])
    if noise > 0:
        img = img + rng.normal(0.0, noise, img.shape).astype(np.float32)
    x = (np.clip(img, 0.0, 1.0) * 255 + 0.5).astype(np.uint8)[:, None]
    return np.ascontiguousarray(x), mask, [BACKGROUND, *glyphs]
