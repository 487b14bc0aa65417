"""``shapes``: synthetic grey images of five drawn glyphs, the course notes' X-vs-O example.

Every glyph is a set of line segments (or a ring) rasterised with an anti-aliased
distance field: a pixel's brightness falls from 1 to 0 over one pixel at the stroke's
edge. All images of a class are drawn at once with numpy, so 3,000 images take a
fraction of a second. Rotation stays within ±20°: at 45° an X is a plus and a square
a diamond, and the classes must stay tellable apart.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from .synthetic import chosen_classes, read_options

CLASSES: tuple[str, ...] = ("X", "O", "plus", "triangle", "square")
DEFAULTS: dict[str, Any] = {"size": 32, "count": 3000, "noise": 0.1}

_S3 = np.sqrt(3.0) / 2
# Glyphs as segments ((x0, y0), (x1, y1)) in a unit box, y pointing down.
_SEGMENTS: dict[str, np.ndarray] = {
    "X": np.array([[[-0.8, -0.8], [0.8, 0.8]], [[-0.8, 0.8], [0.8, -0.8]]]),
    "plus": np.array([[[-1.0, 0.0], [1.0, 0.0]], [[0.0, -1.0], [0.0, 1.0]]]),
    "triangle": np.array([[[0.0, -1.0], [_S3, 0.5]], [[_S3, 0.5], [-_S3, 0.5]],
                          [[-_S3, 0.5], [0.0, -1.0]]]),
    "square": np.array([[[-0.75, -0.75], [0.75, -0.75]], [[0.75, -0.75], [0.75, 0.75]],
                        [[0.75, 0.75], [-0.75, 0.75]], [[-0.75, 0.75], [-0.75, -0.75]]]),
}


def _segment_distance(px: np.ndarray, py: np.ndarray, seg: np.ndarray) -> np.ndarray:
    """Distance of pixel centres [S] × [S] to segments [N, K, 2, 2]: [N, S, S], min over K.

    Computed in chunks of images so large sizes stay within a few tens of MB."""
    step = max(1, 2_000_000 // (seg.shape[1] * len(px) * len(py)))
    if len(seg) > step:
        return np.concatenate([_segment_distance(px, py, seg[i:i + step])
                               for i in range(0, len(seg), step)])
    a, b = seg[:, :, 0, :], seg[:, :, 1, :]                    # [N, K, 2]
    d = b - a
    length2 = np.maximum((d ** 2).sum(-1), 1e-9)[..., None, None]   # [N, K, 1, 1]
    ax, ay = a[..., 0, None, None], a[..., 1, None, None]
    dx, dy = d[..., 0, None, None], d[..., 1, None, None]
    rx, ry = px[None, None, None, :] - ax, py[None, None, :, None] - ay  # [N,K,1,S], [N,K,S,1]
    t = np.clip((rx * dx + ry * dy) / length2, 0.0, 1.0)
    dist2 = (rx - t * dx) ** 2 + (ry - t * dy) ** 2
    return np.sqrt(dist2.min(axis=1))


def glyph_coverage(name: str, cx: np.ndarray, cy: np.ndarray, radius: np.ndarray,
                   width: np.ndarray, angle: np.ndarray, aspect: np.ndarray,
                   size: int) -> np.ndarray:
    """How much of each pixel glyph ``name`` covers: [n, size, size] in 0..1.

    One glyph per row of the parameter arrays (centre, half extent, stroke width,
    rotation in radians, squash). Shared by ``shapes`` and ``shapes-seg``, which
    labels a pixel with the glyph's class where the coverage reaches one half.
    """
    coords = np.arange(size) + 0.5
    cos, sin = np.cos(angle)[:, None, None], np.sin(angle)[:, None, None]
    if name == "O":
        # Distance to an axis-aligned ellipse ring, approximated on the rescaled plane.
        rx = coords[None, None, :] - cx[:, None, None]
        ry = coords[None, :, None] - cy[:, None, None]
        u, v = cos * rx + sin * ry, -sin * rx + cos * ry
        r = (radius * 0.9)[:, None, None]
        a = aspect[:, None, None]
        dist = np.abs(np.sqrt((u / a) ** 2 + (v * a) ** 2) - r)
    else:
        n = len(cx)
        seg = np.broadcast_to(_SEGMENTS[name], (n, *_SEGMENTS[name].shape)).copy()
        seg[..., 0] *= aspect[:, None, None]
        seg[..., 1] /= aspect[:, None, None]
        x, y = seg[..., 0].copy(), seg[..., 1].copy()
        seg[..., 0] = (cos * x - sin * y) * radius[:, None, None] + cx[:, None, None]
        seg[..., 1] = (sin * x + cos * y) * radius[:, None, None] + cy[:, None, None]
        dist = _segment_distance(coords, coords, seg)
    return np.clip(width[:, None, None] / 2 + 0.5 - dist, 0.0, 1.0)


def _draw(name: str, n: int, size: int, noise: float, rng: np.random.Generator) -> np.ndarray:
    """``n`` float images [n, size, size] in 0..1 of glyph ``name``."""
    unit = size / 32
    radius = rng.uniform(5.5, 11.0, n) * unit                    # half the glyph's extent
    width = rng.uniform(1.5, 3.5, n) * unit                      # stroke width
    margin = radius + width / 2 + 0.5
    cx = rng.uniform(margin, size - margin)
    cy = rng.uniform(margin, size - margin)
    angle = np.deg2rad(rng.uniform(-20, 20, n))
    aspect = rng.uniform(0.8, 1.2, n)                            # slight squash, O becomes an oval
    ink = rng.uniform(0.6, 1.0, n)
    img = glyph_coverage(name, cx, cy, radius, width, angle, aspect, size) * ink[:, None, None]
    if noise > 0:
        img = img + rng.normal(0.0, noise, img.shape)
    return np.clip(img, 0.0, 1.0)


def make_shapes(*, seed: int = 0, classes: Sequence[str] | None = None,
                options: Mapping[str, Any] | None = None) -> tuple[np.ndarray, np.ndarray,
                                                                     list[str]]:
    """``count`` images (uint8 [N, 1, size, size]) balanced over ``classes``, shuffled.

    Deterministic for a seed. ``classes`` (names from ``CLASSES``, in the order that
    defines the labels) draws only those glyphs, so ``count`` images are all of them.
    """
    size, count, noise = read_options("shapes", options, DEFAULTS, 8)
    names = chosen_classes("shapes", classes, CLASSES, CLASSES)
    rng = np.random.default_rng(seed)
    per_class = [count // len(names) + (i < count % len(names)) for i in range(len(names))]
    images = [_draw(name, n, size, noise, rng) for name, n in zip(names, per_class, strict=True)
              if n > 0]
    labels = np.repeat(np.arange(len(names)), per_class)
    x = (np.concatenate(images) * 255 + 0.5).astype(np.uint8)[:, None]
    order = rng.permutation(len(labels))
    return np.ascontiguousarray(x[order]), labels[order].astype(np.int64), names
