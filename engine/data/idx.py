"""MNIST and Fashion-MNIST: folders of IDX files, gzipped or not.

A folder holds ``train-images-idx3-ubyte`` and ``train-labels-idx1-ubyte`` and, where
present, the ``t10k-*`` pair, which becomes the validation split. The header of every
file is checked against its size, because a truncated download otherwise shows up as
a reshape error deep in numpy.
"""

from __future__ import annotations

import gzip
import struct
import zlib
from pathlib import Path

import numpy as np

from .prepare import Raw
from .sets import DatasetError

FASHION_CLASSES: tuple[str, ...] = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                                    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")
_UBYTE = 0x08


def _candidates(prefix: str, kind: str, dims: int) -> list[str]:
    """File names under which the pair is published (some mirrors write '.idx3')."""
    names = [f"{prefix}-{kind}-idx{dims}-ubyte", f"{prefix}-{kind}.idx{dims}-ubyte"]
    return [n + ext for n in names for ext in ("", ".gz")]


def _find(folder: Path, prefix: str, kind: str, dims: int) -> Path | None:
    for name in _candidates(prefix, kind, dims):
        if (folder / name).is_file():
            return folder / name
    return None


def idx_folder(folder: Path) -> Path | None:
    """The folder (``folder`` itself or its ``raw/``, torchvision's layout) that holds
    the training pair, or None."""
    for where in (folder, folder / "raw"):
        if where.is_dir() and _find(where, "train", "images", 3):
            return where
    return None


def read_idx(path: Path) -> np.ndarray:
    """One IDX file of unsigned bytes, with magic number and size checked."""
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as f:
                data = f.read()
        else:
            data = path.read_bytes()
    except (OSError, EOFError, zlib.error) as e:
        raise DatasetError(f"cannot read {path}: {e}; the file is damaged, download it "
                           "again") from None
    if len(data) < 4:
        raise DatasetError(f"{path} is truncated ({len(data)} bytes): not an IDX file; "
                           "download it again")
    zero, dtype, ndim = struct.unpack(">HBB", data[:4])
    if zero != 0 or ndim == 0:
        raise DatasetError(f"{path} is not an IDX file (magic number 0x{data[:4].hex()}, "
                           "expected 0x0000080N): is it an MNIST file?")
    if dtype != _UBYTE:
        raise DatasetError(f"{path} holds IDX data type 0x{dtype:02x}; Convas reads "
                           "unsigned-byte (0x08) IDX files as MNIST publishes them")
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DatasetError(f"{path} is truncated inside its header; download it again")
    shape = struct.unpack(f">{ndim}I", data[4:header])
    expected = int(np.prod(shape, dtype=np.int64))
    found = len(data) - header
    if found < expected:
        raise DatasetError(f"{path} is truncated: its header announces "
                           f"{'×'.join(map(str, shape))} = {expected:,} bytes, the file holds "
                           f"{found:,}; download it again")
    if found > expected:
        raise DatasetError(f"{path} has {found - expected:,} bytes more than its header "
                           f"announces ({'×'.join(map(str, shape))}); it is not a valid IDX file")
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(shape)


def _read_pair(folder: Path, prefix: str) -> tuple[np.ndarray, np.ndarray]:
    images_path = _find(folder, prefix, "images", 3)
    labels_path = _find(folder, prefix, "labels", 1)
    if images_path is None or labels_path is None:
        missing = _candidates(prefix, "images" if images_path is None else "labels",
                              3 if images_path is None else 1)[0]
        raise DatasetError(f"{folder} has no {missing} (or {missing}.gz): an MNIST folder "
                           f"needs the {prefix}-images and {prefix}-labels files together")
    images, labels = read_idx(images_path), read_idx(labels_path)
    if images.ndim != 3:
        raise DatasetError(f"{images_path} holds a {images.ndim}-D array; image files are "
                           "3-D (count × height × width)")
    if labels.ndim != 1:
        raise DatasetError(f"{labels_path} holds a {labels.ndim}-D array; label files are 1-D")
    if len(images) != len(labels):
        raise DatasetError(f"{images_path.name} has {len(images):,} images but "
                           f"{labels_path.name} has {len(labels):,} labels: they must match")
    return images[:, None], labels.astype(np.int64)


def load_idx(folder: Path, *, fashion: bool = False) -> Raw:
    """Read the pairs in ``folder``; class names are Fashion-MNIST's where ``fashion``."""
    where = idx_folder(folder)
    if where is None:
        raise DatasetError(f"{folder} has no train-images-idx3-ubyte(.gz): not an MNIST folder")
    x, y = _read_pair(where, "train")
    val_x = val_y = None
    if _find(where, "t10k", "images", 3) or _find(where, "t10k", "labels", 1):
        val_x, val_y = _read_pair(where, "t10k")
        if val_x.shape[1:] != x.shape[1:]:
            raise DatasetError(f"the t10k images in {where} are {val_x.shape[2]}×"
                               f"{val_x.shape[3]}, the training images {x.shape[2]}×"
                               f"{x.shape[3]}: both must have the same size")
    top = int(max(y.max(initial=0), -1 if val_y is None else val_y.max(initial=0)))
    if fashion:
        if top >= len(FASHION_CLASSES):
            raise DatasetError(f"{where} has label {top}; Fashion-MNIST has 10 classes (0..9)")
        classes = list(FASHION_CLASSES[:top + 1])
    else:
        classes = [str(i) for i in range(top + 1)]
    return Raw(x, y, classes, val_x, val_y)
