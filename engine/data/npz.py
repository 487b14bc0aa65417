"""``.npz`` files with arrays ``x`` (images) and ``y`` (labels), as ``numpy.savez`` writes.

``x`` may be N×H×W, N×H×W×C or N×C×H×W: channels-last is recognised when the last
dimension is 1, 3 or 4 and the second is not. uint8 is read as 0..255, floats must lie
in 0..1. An optional ``classes`` array names the labels; ``x_val``/``y_val`` (or
``x_test``/``y_test``) give a fixed validation split. Pickled objects are refused.

A ``y`` of shape N×H×W (integers, the images' H×W) holds masks: the file is a
segmentation set, each pixel a class index (255 = ignore), SPEC §7.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from .prepare import IGNORE, Raw
from .segfolder import numbered_classes
from .sets import DatasetError

_CHANNELS = (1, 3, 4)


def _images(path: Path, key: str, x: np.ndarray) -> np.ndarray:
    if x.ndim == 3:
        x = x[:, None]
    elif x.ndim == 4:
        if x.shape[3] in _CHANNELS and x.shape[1] not in _CHANNELS:
            x = x.transpose(0, 3, 1, 2)
    else:
        raise DatasetError(f"{path}: {key!r} has shape {x.shape}; use N×H×W, N×H×W×C or "
                           "N×C×H×W images")
    if x.dtype == np.uint8:
        return np.ascontiguousarray(x)
    if x.dtype.kind in "iub":
        lo, hi = (int(x.min()), int(x.max())) if x.size else (0, 0)
        if lo < 0 or hi > 255:
            raise DatasetError(f"{path}: {key!r} holds integers from {lo} to {hi}; "
                               "use 0..255 (uint8) or floats in 0..1")
        return np.ascontiguousarray(x.astype(np.uint8))
    if x.dtype.kind == "f":
        x = x.astype(np.float32)
        lo, hi = (float(x.min()), float(x.max())) if x.size else (0.0, 0.0)
        if not np.isfinite(x).all() or lo < -1e-6 or hi > 1 + 1e-6:
            raise DatasetError(f"{path}: {key!r} holds floats from {lo:g} to {hi:g}; "
                               "Convas expects floats in 0..1 or uint8 0..255 (it "
                               "normalises itself)")
        return np.ascontiguousarray(x.clip(0.0, 1.0))
    raise DatasetError(f"{path}: {key!r} has type {x.dtype}; use uint8 or float images")


def _labels(path: Path, key: str, y: np.ndarray, n: int) -> np.ndarray:
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1:
        raise DatasetError(f"{path}: {key!r} has shape {y.shape}; labels are one class "
                           "index per image (not one-hot)")
    if len(y) != n:
        raise DatasetError(f"{path}: {n:,} images but {len(y):,} labels in {key!r}")
    if y.dtype.kind == "f" and np.all(np.mod(y, 1) == 0):
        y = y.astype(np.int64)
    if y.dtype.kind not in "iu":
        raise DatasetError(f"{path}: {key!r} has type {y.dtype}; labels are integer class "
                           "indices 0..K-1")
    if len(y) and y.min() < 0:
        raise DatasetError(f"{path}: {key!r} holds the negative label {int(y.min())}")
    return y.astype(np.int64)


def _masks(path: Path, key: str, y: np.ndarray, x: np.ndarray) -> np.ndarray:
    if y.ndim != 3:
        raise DatasetError(f"{path}: {key!r} has shape {y.shape}; segmentation masks are "
                           "N×H×W like 'y'")
    if y.shape[0] != len(x) or y.shape[1:] != x.shape[2:]:
        raise DatasetError(f"{path}: {key!r} has shape {y.shape} but the images are "
                           f"{x.shape[0]:,} of {x.shape[2]}×{x.shape[3]}: give one "
                           "mask of the image's size per image")
    if y.dtype.kind not in "iub":
        raise DatasetError(f"{path}: {key!r} has type {y.dtype}; masks hold integer class "
                           "indices (255 = ignore)")
    lo, hi = (int(y.min()), int(y.max())) if y.size else (0, 0)
    if lo < 0 or hi > 255:
        raise DatasetError(f"{path}: {key!r} holds values from {lo} to {hi}; mask values "
                           "are class indices 0..254, or 255 to ignore a pixel")
    return np.ascontiguousarray(y.astype(np.uint8))


def _load_masks(path: Path, arrays: dict[str, np.ndarray], x: np.ndarray) -> Raw:
    """The segmentation reading of an .npz whose ``y`` is N×H×W."""
    y = _masks(path, "y", arrays["y"], x)
    val_x = val_y = None
    for xk, yk in (("x_val", "y_val"), ("x_test", "y_test")):
        if xk in arrays and yk in arrays:
            val_x = _images(path, xk, arrays[xk])
            val_y = _masks(path, yk, arrays[yk], val_x)
            if val_x.shape[1:] != x.shape[1:]:
                raise DatasetError(f"{path}: {xk!r} images are {val_x.shape[1:]}, 'x' "
                                   f"images {x.shape[1:]}: they must match")
            break
    found = [y] if val_y is None else [y, val_y]
    if "classes" in arrays:
        classes = [str(c) for c in np.asarray(arrays["classes"]).reshape(-1)]
        top = max(int(m[m != IGNORE].max(initial=0)) for m in found)
        if top >= len(classes):
            raise DatasetError(f"{path}: a mask holds class {top} but only {len(classes)} "
                               "names in 'classes'")
        if len(set(classes)) != len(classes):
            raise DatasetError(f"{path}: 'classes' names a class twice")
    else:
        classes = numbered_classes(found)
    return Raw(x, y, classes, val_x, val_y, task="segmentation")


def load_npz(path: Path) -> Raw:
    """Read ``x``, ``y`` and the optional ``classes`` and validation arrays."""
    try:
        with np.load(path, allow_pickle=False) as f:
            arrays = {k: f[k] for k in f.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as e:
        raise DatasetError(f"cannot read {path} as .npz: {e}") from None
    missing = [k for k in ("x", "y") if k not in arrays]
    if missing:
        raise DatasetError(f"{path} has no array {missing[0]!r} (it has "
                           f"{', '.join(arrays) or 'none'}): save images as x and labels "
                           "as y, e.g. numpy.savez(path, x=images, y=labels)")
    x = _images(path, "x", arrays["x"])
    if np.ndim(arrays["y"]) == 3:
        return _load_masks(path, arrays, x)
    y = _labels(path, "y", arrays["y"], len(x))
    val_x = val_y = None
    for xk, yk in (("x_val", "y_val"), ("x_test", "y_test")):
        if xk in arrays and yk in arrays:
            val_x = _images(path, xk, arrays[xk])
            val_y = _labels(path, yk, arrays[yk], len(val_x))
            if val_x.shape[1:] != x.shape[1:]:
                raise DatasetError(f"{path}: {xk!r} images are {val_x.shape[1:]}, 'x' "
                                   f"images {x.shape[1:]}: they must match")
            break
    top = int(max(y.max(initial=-1), -1 if val_y is None else val_y.max(initial=-1)))
    if "classes" in arrays:
        classes = [str(c) for c in np.asarray(arrays["classes"]).reshape(-1)]
        if top >= len(classes):
            raise DatasetError(f"{path}: label {top} but only {len(classes)} names in "
                               "'classes'")
        if len(set(classes)) != len(classes):
            raise DatasetError(f"{path}: 'classes' names a class twice")
    else:
        classes = [str(i) for i in range(top + 1)]
    return Raw(x, y, classes, val_x, val_y)
