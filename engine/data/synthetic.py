"""What the synthetic glyph sets (``shapes``, ``shapes-seg``, ``shapes-det``) share: their
options, their class choice and where their glyphs go.

The three sets take the same options (``size``, ``count``, ``noise``) and choose glyphs
by name; the checks and their messages live here once, worded with the set's own name,
so that a fix or a new rule reaches all three. The two multi-glyph sets also place
their glyphs the same way (bounding discs that do not overlap), so that lives here too.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from .sets import DatasetError

#: Farthest stroke point from a glyph's centre, in radii (squash + turn).
EXTENT = 1.3


def read_options(set_name: str, options: Mapping[str, Any] | None,
                 defaults: Mapping[str, Any], min_size: int) -> tuple[int, int, float]:
    """``(size, count, noise)`` from ``options`` over ``defaults``; a clear DatasetError
    naming ``set_name`` for an unknown option, a non-number or a value out of range
    (``size`` from ``min_size`` to 512 pixels, ``count`` at least 1, ``noise`` 0 to 1)."""
    opts = dict(defaults)
    for key, value in (options or {}).items():
        if key not in defaults:
            raise DatasetError(f"{set_name} has no option {key!r}; its options are "
                               f"{', '.join(defaults)}")
        opts[key] = value
    try:
        size, count, noise = int(opts["size"]), int(opts["count"]), float(opts["noise"])
    except (TypeError, ValueError):
        raise DatasetError(f"{set_name} options must be numbers, got {opts}") from None
    if not min_size <= size <= 512:
        raise DatasetError(f"{set_name} size {size} is out of range: use {min_size} to 512 "
                           "pixels")
    if count < 1:
        raise DatasetError(f"{set_name} count {count} must be at least 1")
    if not 0 <= noise <= 1:
        raise DatasetError(f"{set_name} noise {noise} is out of range: use 0 to 1")
    return size, count, noise


def chosen_classes(set_name: str, classes: Sequence[str] | str | None, known: Sequence[str],
                   default: Sequence[str], *, once: str = "",
                   allow_empty: bool = False) -> list[str]:
    """The class names asked for, in their order (``default`` when None; one string is
    one name), each checked against ``known``. Naming a class twice, or none unless
    ``allow_empty``, is refused with "name each <set> class once<once>"."""
    if classes is None:
        return list(default)
    names = [str(c) for c in ([classes] if isinstance(classes, str) else classes)]
    for name in names:
        if name not in known:
            raise DatasetError(f"{set_name} has no class {name!r}; its classes are "
                               f"{', '.join(known)}")
    if len(set(names)) != len(names) or (not names and not allow_empty):
        raise DatasetError(f"name each {set_name} class once{once}, got {names}")
    return names


def place_glyphs(radius: np.ndarray, width: np.ndarray, size: int, tries: int,
                 rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Glyph parameters ``[slots, n]`` for glyphs of the given ``radius`` and stroke
    ``width`` (both ``[slots, n]``, drawn by the caller, whose sets size them
    differently) in ``size``-pixel images: a random number of slots from 1 to all is
    wanted an image, and each wanted glyph gets the first of ``tries`` random centres
    whose bounding disc (``margin``) keeps clear of the border and of the glyphs placed
    before it; ``placed`` says which slots found one (the first always does).

    Also draws turn, squash, ink and a ``kind`` for the caller to map to a class."""
    slots, n = radius.shape
    p = {"radius": radius, "width": width,
         "angle": np.deg2rad(rng.uniform(-20, 20, radius.shape)),
         "aspect": rng.uniform(0.8, 1.2, radius.shape),
         "ink": rng.uniform(0.6, 1.0, radius.shape),
         "kind": rng.integers(0, 1 << 30, radius.shape)}
    margin = EXTENT * radius + width / 2 + 1.0
    wanted = np.arange(slots)[:, None] < rng.integers(1, slots + 1, n)[None]
    cx, cy = np.zeros(radius.shape), np.zeros(radius.shape)
    placed = np.zeros(radius.shape, dtype=bool)
    for slot in range(slots):
        m = margin[slot]
        tx = rng.uniform(m, size - m, (tries, n))
        ty = rng.uniform(m, size - m, (tries, n))
        ok = np.ones((tries, n), dtype=bool)
        for prev in range(slot):
            gap = np.hypot(tx - cx[prev], ty - cy[prev]) >= m + margin[prev]
            ok &= gap | ~placed[prev]
        first = ok.argmax(axis=0)
        cols = np.arange(n)
        cx[slot], cy[slot] = tx[first, cols], ty[first, cols]
        placed[slot] = wanted[slot] & ok.any(axis=0)
    p.update(cx=cx, cy=cy, margin=margin, placed=placed)
    return p


def stamp_glyphs(canvas: np.ndarray, p: Mapping[str, np.ndarray], slot: int,
                 idx: np.ndarray, name: str, half: int
                 ) -> tuple[np.ndarray, tuple[np.ndarray, ...], np.ndarray, np.ndarray]:
    """Draw glyph ``name`` of ``slot`` into images ``idx`` of ``canvas`` (padded by
    ``half`` pixels each side, so no window leaves it), rendering only a ``2·half``
    window around each centre, where the glyph is the brightest so far.

    Returns the coverage ``[len(idx), 2·half, 2·half]``, the index of those windows
    into ``canvas`` (for a mask to label the same pixels) and the windows' origins
    x0, y0 in image pixels (for a box)."""
    from .shapes import glyph_coverage  # here: shapes itself imports this module

    window = 2 * half
    steps = np.arange(window)
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
    return cover, at, x0, y0
