"""Image folders: one sub-folder per class, the class named after the sub-folder.

A folder whose sub-folders are ``train`` and ``val`` (or ``test``), each holding the
class sub-folders, keeps that split. Images are decoded with Pillow, converted to grey
or RGB and, where a size is given, resized (bilinear); without a size all images must
share the first one's, since silently resizing would hide a mixed-up folder.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .prepare import Raw
from .sets import DatasetError

EXTENSIONS: frozenset[str] = frozenset(
    {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm"})
_SPLITS = {"train": "train", "val": "val", "valid": "val", "validation": "val", "test": "val"}
_GREY_MODES = {"1", "L", "LA", "I", "I;16", "F"}


def _subfolders(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))


def _images(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir()
                  if p.is_file() and p.suffix.lower() in EXTENSIONS and not p.name.startswith("."))


def is_image_folder(folder: Path) -> bool:
    """True where some sub-folder holds an image (or a split's sub-folder does)."""
    for sub in _subfolders(folder):
        if _images(sub) or any(_images(s) for s in _subfolders(sub)):
            return True
    return False


def _split_folders(folder: Path) -> dict[str, Path] | None:
    subs = _subfolders(folder)
    if not subs or any(s.name.lower() not in _SPLITS for s in subs):
        return None
    splits = {_SPLITS[s.name.lower()]: s for s in subs}
    if "train" not in splits or len(splits) != len(subs):
        return None
    return splits


def _class_files(folder: Path) -> dict[str, list[Path]]:
    subs = _subfolders(folder)
    if not subs:
        raise DatasetError(f"{folder} has no sub-folders: an image folder needs one "
                           "sub-folder per class, holding that class's images")
    files = {s.name: _images(s) for s in subs}
    empty = [name for name, f in files.items() if not f]
    if empty:
        raise DatasetError(f"class folder '{empty[0]}' in {folder} holds no images "
                           f"({', '.join(sorted(EXTENSIONS))}); add images or remove it")
    return files


def _decode(path: Path, channels: int, size: tuple[int, int] | None) -> np.ndarray:
    return decode_image(path, channels, size)[0]


def decode_image(path: Path, channels: int, size: tuple[int, int] | None
                 ) -> tuple[np.ndarray, tuple[int, int]]:
    """uint8 [C, H, W], grey or RGB, resized bilinearly to ``size`` (H, W) when given,
    and the image's own (width, height): how training reads an image, and so how
    ``convas predict`` must read one."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as img:
            own = img.size
            mode = "L" if channels == 1 else "RGB"
            img = img.convert(mode)
            if size is not None and img.size != (size[1], size[0]):
                img = img.resize((size[1], size[0]), Image.Resampling.BILINEAR)
            arr = np.array(img, dtype=np.uint8)  # a writable copy, for torch
    except (OSError, UnidentifiedImageError, ValueError) as e:
        raise DatasetError(f"cannot read image {path}: {e}") from None
    return (arr[None] if arr.ndim == 2 else arr.transpose(2, 0, 1)), own


def _first_format(path: Path) -> tuple[int, tuple[int, int]]:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as img:
            return (1 if img.mode in _GREY_MODES else 3), (img.size[1], img.size[0])
    except (OSError, UnidentifiedImageError) as e:
        raise DatasetError(f"cannot read image {path}: {e}") from None


def _read(files: dict[str, list[Path]], classes: list[str], channels: int,
          size: tuple[int, int], fixed: bool) -> tuple[np.ndarray, np.ndarray]:
    images, labels = [], []
    for name, paths in files.items():
        for path in paths:
            arr = _decode(path, channels, size if fixed else None)
            if arr.shape[1:] != size:
                raise DatasetError(
                    f"{path} is {arr.shape[2]}×{arr.shape[1]} pixels but the first image is "
                    f"{size[1]}×{size[0]}: pass an image size (e.g. 1×{size[0]}×{size[1]}) "
                    "to resize every image to it")
            images.append(arr)
            labels.append(classes.index(name))
    if not images:
        return np.zeros((0, channels, *size), np.uint8), np.zeros(0, np.int64)
    return np.stack(images), np.asarray(labels, dtype=np.int64)


def requested_format(image_shape: tuple[int, int, int]) -> tuple[int, tuple[int, int]]:
    """Channels and (H, W) from the Input's shape, refused when images cannot be read so."""
    channels, h, w = (int(v) for v in image_shape)
    if channels not in (1, 3):
        raise DatasetError(f"image size {channels}×{h}×{w}: images are read as grey "
                           "(1 channel) or RGB (3 channels)")
    if h < 1 or w < 1:
        raise DatasetError(f"image size {channels}×{h}×{w} must be at least 1×1 pixels")
    return channels, (h, w)


def read_format(image_shape: tuple[int, int, int] | None,
                first: Path) -> tuple[int, tuple[int, int], bool]:
    """Channels, (H, W) and whether images are resized to them: the Input's shape when
    given (every image is then resized), else the ``first`` image's own format (every
    other image must match it)."""
    if image_shape is not None:
        return (*requested_format(image_shape), True)
    return (*_first_format(first), False)


def load_image_folder(folder: Path,
                      image_shape: tuple[int, int, int] | None = None) -> Raw:
    """Decode every image; ``image_shape`` (C, H, W) fixes grey/RGB and the size."""
    splits = _split_folders(folder)
    train_files = _class_files(splits["train"] if splits else folder)
    val_files = _class_files(splits["val"]) if splits and "val" in splits else None
    classes = sorted(set(train_files) | set(val_files or {}))
    first = next(p for paths in train_files.values() for p in paths)
    channels, size, fixed = read_format(image_shape, first)
    x, y = _read(train_files, classes, channels, size, fixed)
    val_x = val_y = None
    if val_files is not None:
        val_x, val_y = _read(val_files, classes, channels, size, fixed)
    return Raw(x, y, classes, val_x, val_y)
