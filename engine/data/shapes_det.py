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

from .shapes import CLASSES
from .synthetic import EXTENT, chosen_classes, place_glyphs, read_options, stamp_glyphs

DEFAULTS: dict[str, Any] = {"size": 64, "count": 3000, "noise": 0.1}
MAX_GLYPHS = 4
_TRIES = 16                 # candidate centres per glyph before giving the slot up
_RADIUS = (3.5, 12.5)       # half a glyph's extent, in pixels of a 64×64 image
_WIDTH = (0.2, 0.3)         # stroke width as a share of the radius …
_MIN_WIDTH = 1.2            # … but never thinner than this (pixels at 64×64)


def _place(n: int, size: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Glyph parameters [MAX_GLYPHS, n]; ``placed`` says which slots hold a glyph.

    The first slot always holds one, so every image has at least one box."""
    unit = size / 64
    radius = rng.uniform(*_RADIUS, (MAX_GLYPHS, n)) * unit
    width = np.maximum(radius * rng.uniform(*_WIDTH, radius.shape), _MIN_WIDTH * unit)
    return place_glyphs(radius, width, size, _TRIES, rng)


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
    size, count, noise = read_options("shapes-det", options, DEFAULTS, 32)
    glyphs = chosen_classes("shapes-det", classes, CLASSES, CLASSES, once=" (at least one)")
    rng = np.random.default_rng(seed)
    p = _place(count, size, rng)
    kind = p["kind"] % len(glyphs)
    unit = size / 64
    r_max = _RADIUS[1] * unit
    half = math.ceil(EXTENT * r_max + max(_WIDTH[1] * r_max, _MIN_WIDTH * unit) / 2 + 1.0)
    window = 2 * half
    canvas = np.zeros((count, size + window, size + window), dtype=np.float32)
    boxes = np.zeros((MAX_GLYPHS, count, 5), dtype=np.float32)
    boxes[..., 0] = -1
    for slot in range(MAX_GLYPHS):
        for label, name in enumerate(glyphs):
            idx = np.flatnonzero(p["placed"][slot] & (kind[slot] == label))
            if len(idx) == 0:
                continue
            cover, at, x0, y0 = stamp_glyphs(canvas, p, slot, idx, name, half)
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
