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
from .synthetic import EXTENT, chosen_classes, place_glyphs, read_options, stamp_glyphs

BACKGROUND = "background"
CLASSES: tuple[str, ...] = (BACKGROUND, *GLYPHS)
DEFAULTS: dict[str, Any] = {"size": 64, "count": 2000, "noise": 0.1}
MAX_GLYPHS = 3
_TRIES = 12                 # candidate centres per glyph before giving the slot up


def _glyph_names(classes: Sequence[str] | None) -> list[str]:
    """The glyphs to draw; ``background`` may be named (it is always class 0)."""
    names = chosen_classes("shapes-seg", classes, CLASSES, GLYPHS, allow_empty=True)
    glyphs = [n for n in names if n != BACKGROUND]
    if not glyphs:
        raise DatasetError("shapes-seg needs at least one glyph class to draw besides "
                           f"background: choose from {', '.join(GLYPHS)}")
    return glyphs


def _place(n: int, size: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Glyph parameters [MAX_GLYPHS, n] with ``placed`` saying which slots hold a glyph."""
    unit = size / 64
    radius = rng.uniform(5.0, 10.0, (MAX_GLYPHS, n)) * unit
    width = rng.uniform(1.5, 3.0, radius.shape) * unit
    return place_glyphs(radius, width, size, _TRIES, rng)


def make_shapes_seg(*, seed: int = 0, classes: Sequence[str] | None = None,
                    options: Mapping[str, Any] | None = None
                    ) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Images uint8 [N, 1, S, S], masks uint8 [N, S, S] and the class names.

    Deterministic for a seed. ``classes`` picks the glyphs drawn (``background`` is
    always class 0, the glyphs follow in the given order).
    """
    size, count, noise = read_options("shapes-seg", options, DEFAULTS, 32)
    glyphs = _glyph_names(classes)
    rng = np.random.default_rng(seed)
    p = _place(count, size, rng)
    kind = p["kind"] % len(glyphs)
    half = math.ceil(EXTENT * 10.0 * size / 64 + 1.5 * size / 64 + 1.0)
    window = 2 * half
    canvas = np.zeros((count, size + window, size + window), dtype=np.float32)
    labels = np.zeros((count, size + window, size + window), dtype=np.uint8)
    for slot in range(MAX_GLYPHS):
        for label, name in enumerate(glyphs, start=1):
            idx = np.flatnonzero(p["placed"][slot] & (kind[slot] == label - 1))
            if len(idx) == 0:
                continue
            cover, at, x0, y0 = stamp_glyphs(canvas, p, slot, idx, name, half)
            labels[at] = np.where(cover >= 0.5, np.uint8(label), labels[at])
    img = canvas[:, half:half + size, half:half + size]
    mask = np.ascontiguousarray(labels[:, half:half + size, half:half + size])
    if noise > 0:
        img = img + rng.normal(0.0, noise, img.shape).astype(np.float32)
    x = (np.clip(img, 0.0, 1.0) * 255 + 0.5).astype(np.uint8)[:, None]
    return np.ascontiguousarray(x), mask, [BACKGROUND, *glyphs]
