"""The data sets that need no file and no network: ``shapes``, ``digits``, ``shapes-seg``,
``shapes-det``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from .prepare import Raw
from .sets import DatasetError
from .shapes import make_shapes
from .shapes_det import make_shapes_det
from .shapes_seg import make_shapes_seg

BUILTIN: tuple[str, ...] = ("shapes", "digits", "shapes-seg", "shapes-det")


def load_shapes(*, seed: int, classes: Sequence[str] | None,
                options: Mapping[str, Any] | None) -> Raw:
    """Draw the glyphs; only the chosen classes are drawn, so ``count`` is what you get."""
    x, y, names = make_shapes(seed=seed, classes=classes, options=options)
    return Raw(x, y, names)


def load_shapes_seg(*, seed: int, classes: Sequence[str] | None,
                    options: Mapping[str, Any] | None) -> Raw:
    """Glyphs with their masks; ``classes`` picks the glyphs (background is class 0)."""
    x, masks, names = make_shapes_seg(seed=seed, classes=classes, options=options)
    return Raw(x, masks, names, task="segmentation")


def load_shapes_det(*, seed: int, classes: Sequence[str] | None,
                    options: Mapping[str, Any] | None) -> Raw:
    """Glyphs with their boxes; ``classes`` picks the glyphs drawn, numbered in that order."""
    x, boxes, names = make_shapes_det(seed=seed, classes=classes, options=options)
    return Raw(x, boxes, names, task="detection")


def load_digits() -> Raw:
    """scikit-learn's 1,797 handwritten digits, 8×8, ink 0..16 scaled to 0..255."""
    from sklearn.datasets import load_digits as sk_load_digits

    bunch = sk_load_digits()
    images = np.asarray(bunch.images, dtype=np.float64)
    x = np.round(images * (255.0 / 16.0)).clip(0, 255).astype(np.uint8)[:, None]
    return Raw(np.ascontiguousarray(x), np.asarray(bunch.target, dtype=np.int64),
               [str(i) for i in range(10)])


def load_builtin(name: str, *, seed: int, classes: Sequence[str] | None,
                 options: Mapping[str, Any] | None) -> Raw:
    """``name`` is one of ``BUILTIN``."""
    if name == "shapes":
        return load_shapes(seed=seed, classes=classes, options=options)
    if name == "shapes-seg":
        return load_shapes_seg(seed=seed, classes=classes, options=options)
    if name == "shapes-det":
        return load_shapes_det(seed=seed, classes=classes, options=options)
    if options:
        raise DatasetError(f"{name} takes no options, got {', '.join(map(str, options))}")
    return load_digits()
