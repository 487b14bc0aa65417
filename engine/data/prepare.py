"""From what a reader found to a ``Dataset``: class subset, split, limit, statistics.

Readers return ``Raw`` numpy arrays and never split or subsample, so every source
gets the same deterministic treatment of ``classes``, ``val_fraction``, ``seed`` and
``limit``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from .sets import Dataset, DatasetError, ImageSet, channel_stats

IGNORE = 255  # the mask value of pixels no loss or metric counts (SPEC §7)


@dataclass
class Raw:
    """Images [N, C, H, W] (uint8, or float32 in 0..1) and int64 labels, as read.

    ``val`` is set where the source has its own test split (MNIST's t10k files,
    CIFAR's test batch); otherwise the training images are split. For
    ``task="segmentation"`` the labels are uint8 masks [N, H, W] (255 = ignore); for
    ``task="detection"`` float32 boxes [N, M, 5], rows ``(class, x1, y1, x2, y2)`` in
    pixels of the images as stored, padded with rows of class -1 (M ≥ 1).
    """

    x: np.ndarray
    y: np.ndarray
    classes: list[str]
    val_x: np.ndarray | None = None
    val_y: np.ndarray | None = None
    task: str = "classification"


def select_classes(raw: Raw, wanted: Sequence[str]) -> Raw:
    """Keep only the classes named in ``wanted``, relabelled 0..k-1 in that order."""
    if isinstance(wanted, str):
        wanted = [wanted]
    names = [str(c) for c in wanted]
    if not names:
        raise DatasetError("the list of classes to keep is empty: name at least one class")
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise DatasetError(f"class {duplicates[0]!r} is named twice in the classes to keep")
    unknown = [n for n in names if n not in raw.classes]
    if unknown:
        raise DatasetError(f"no class {unknown[0]!r} in this dataset; its classes are "
                           f"{', '.join(raw.classes)}")
    if raw.task == "segmentation":
        return _select_mask_classes(raw, names)
    if raw.task == "detection":
        return _select_box_classes(raw, names)
    lookup = np.full(len(raw.classes), -1, dtype=np.int64)
    for new, name in enumerate(names):
        lookup[raw.classes.index(name)] = new

    def keep(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        new_y = lookup[y]
        mask = new_y >= 0
        return x[mask], new_y[mask]

    x, y = keep(raw.x, raw.y)
    val_x = val_y = None
    if raw.val_x is not None and raw.val_y is not None:
        val_x, val_y = keep(raw.val_x, raw.val_y)
    return Raw(x, y, names, val_x, val_y)


def _select_mask_classes(raw: Raw, names: list[str]) -> Raw:
    """Masks relabelled 0..k-1 in ``names``' order; pixels of other classes are ignored
    (255), so the images stay and only the named classes are learnt."""
    lookup = np.full(256, IGNORE, dtype=np.uint8)
    for new, name in enumerate(names):
        lookup[raw.classes.index(name)] = new
    val_y = None if raw.val_y is None else lookup[raw.val_y]
    return Raw(raw.x, lookup[raw.y], names, raw.val_x, val_y, raw.task)


def _select_box_classes(raw: Raw, names: list[str]) -> Raw:
    """Boxes of the named classes relabelled 0..k-1 in ``names``' order; other boxes are
    dropped (their rows become padding), and every image stays, with or without boxes:
    an image with no box of a class teaches the detector to find none there."""
    lookup = np.full(len(raw.classes) + 1, -1.0, dtype=np.float32)   # index -1: padding
    for new, name in enumerate(names):
        lookup[raw.classes.index(name)] = new

    def keep(y: np.ndarray) -> np.ndarray:
        label = lookup[y[:, :, 0].astype(np.int64)]
        out = np.where((label >= 0)[..., None], y, np.float32(0)).astype(np.float32)
        out[:, :, 0] = label
        order = np.argsort(label < 0, axis=1, kind="stable")   # kept boxes first
        return np.take_along_axis(out, order[:, :, None], axis=1)

    val_y = None if raw.val_y is None else keep(raw.val_y)
    return Raw(raw.x, keep(raw.y), names, raw.val_x, val_y, raw.task)


def random_split(n: int, val_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices (train, val) of a shuffled split, both sorted: masks and box lists have no
    one class to stratify by. Two or more images keep at least one on each side."""
    idx = np.random.default_rng(seed).permutation(n)
    n_val = round(n * val_fraction)
    if val_fraction > 0 and n >= 2:
        n_val = min(max(n_val, 1), n - 1)
    return np.sort(idx[n_val:]), np.sort(idx[:n_val])


def random_subset(n: int, limit: int, seed: int) -> np.ndarray:
    """Sorted indices of at most ``limit`` of ``n`` images, drawn at random."""
    if limit >= n:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed + 7919).permutation(n)[:limit])


def stratified_split(y: np.ndarray, val_fraction: float,
                     seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices (train, val), each class split in the same proportion, both sorted.

    A class with at least two images keeps at least one on each side, so a small
    dataset still validates every class.
    """
    rng = np.random.default_rng(seed)
    train, val = [], []
    for label in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == label))
        n_val = round(len(idx) * val_fraction)
        if val_fraction > 0 and len(idx) >= 2:
            n_val = min(max(n_val, 1), len(idx) - 1)
        val.append(idx[:n_val])
        train.append(idx[n_val:])
    empty = np.zeros(0, dtype=np.int64)
    return (np.sort(np.concatenate(train or [empty])),
            np.sort(np.concatenate(val or [empty])))


def stratified_subset(y: np.ndarray, limit: int, seed: int) -> np.ndarray:
    """Sorted indices of at most ``limit`` samples, classes in their original proportion.

    Each class is shuffled and its k-th sample gets the key (k + u) / class size, u
    uniform in [0, 1); taking the smallest keys draws evenly from every class.
    """
    if limit >= len(y):
        return np.arange(len(y))
    rng = np.random.default_rng(seed + 7919)
    keys = np.empty(len(y))
    for label in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == label))
        keys[idx] = (np.arange(len(idx)) + rng.random(len(idx))) / len(idx)
    return np.sort(np.argsort(keys, kind="stable")[:limit])


_LABEL_DTYPES = {"classification": np.int64, "segmentation": np.uint8,
                 "detection": np.float32}


def _image_set(x: np.ndarray, y: np.ndarray, task: str) -> ImageSet:
    # Writable and contiguous: arrays read with frombuffer are read-only views of bytes.
    x = np.require(x if x.dtype == np.uint8 else x.astype(np.float32, copy=False),
                   requirements=["C", "W"])
    y = np.require(y, dtype=_LABEL_DTYPES[task], requirements=["C", "W"])
    return ImageSet(torch.from_numpy(x), torch.from_numpy(y))


def build_dataset(name: str, raw: Raw, *, val_fraction: float, seed: int,
                  classes: Sequence[str] | None, limit: int | None,
                  val_limit: int | None = None) -> Dataset:
    """Apply the class subset, split (where the source has no test split) and limits."""
    if classes is not None:
        raw = select_classes(raw, classes)
    if len(raw.y) == 0:
        raise DatasetError(f"{name} holds no training images"
                           + (" of the chosen classes" if classes is not None else ""))
    at_random = raw.task != "classification"   # masks or boxes: no class to stratify by
    if raw.val_x is not None and raw.val_y is not None:
        x, y, vx, vy = raw.x, raw.y, raw.val_x, raw.val_y
    else:
        train_idx, val_idx = (random_split(len(raw.y), val_fraction, seed) if at_random
                              else stratified_split(raw.y, val_fraction, seed))
        x, y, vx, vy = raw.x[train_idx], raw.y[train_idx], raw.x[val_idx], raw.y[val_idx]
    if limit is not None:
        keep = (random_subset(len(y), limit, seed) if at_random
                else stratified_subset(y, limit, seed))
        x, y = x[keep], y[keep]
    if val_limit is not None:
        keep = (random_subset(len(vy), val_limit, seed + 1) if at_random
                else stratified_subset(vy, val_limit, seed + 1))
        vx, vy = vx[keep], vy[keep]
    train, val = _image_set(x, y, raw.task), _image_set(vx, vy, raw.task)
    mean, std = channel_stats(train.x)
    return Dataset(name=name, train=train, val=val, classes=list(raw.classes),
                   mean=mean, std=std, task=raw.task)
