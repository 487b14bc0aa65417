"""``load_dataset``: from a name or a path to a ``Dataset``.

Names come first (``shapes``, ``digits``, ``shapes-seg``, ``shapes-det``, ``mnist``,
``fashion-mnist``, ``cifar10``);
anything else is a path, and a folder's format is recognised from its files. Every
message for a source that cannot be used lists what can.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from . import fetch
from .builtin import BUILTIN, load_builtin
from .cifar import cifar_folder, load_cifar
from .fetch import DOWNLOADABLE
from .idx import idx_folder, load_idx
from .imagefolder import is_image_folder, load_image_folder
from .npz import load_npz
from .prepare import Raw, build_dataset
from .segfolder import is_seg_folder, load_seg_folder
from .sets import Dataset, DatasetError
from .yolofolder import is_yolo_folder, load_yolo_folder

ALIASES: dict[str, str] = {"fashion_mnist": "fashion-mnist", "fashionmnist": "fashion-mnist",
                           "cifar-10": "cifar10", "cifar_10": "cifar10",
                           "shapes_seg": "shapes-seg", "shapesseg": "shapes-seg",
                           "shapes_det": "shapes-det", "shapesdet": "shapes-det"}
_WHAT = ("an IDX/CIFAR folder, an image folder, a segmentation folder (images/ and "
         "masks/, or PASCAL VOC), a YOLO detection folder (images/ and labels/) or an "
         ".npz file")
_HINT = {"mnist": "the folder with the IDX files", "fashion-mnist": "the folder with the IDX files",
         "cifar10": "the folder with the CIFAR-10 binary files (cifar-10-batches-bin)"}


def dataset_key(source: str) -> str | None:
    """The canonical name of a built-in or downloadable set, or None for a path."""
    key = source.strip().lower()
    key = ALIASES.get(key, key)
    return key if key in BUILTIN + DOWNLOADABLE else None


def _display(path: Path) -> str:
    """``path`` with the home folder written as ``~``, as people type it."""
    try:
        return "~/" + path.relative_to(Path.home()).as_posix()
    except ValueError:
        return str(path)


def _unknown(source: str) -> DatasetError:
    names = BUILTIN + DOWNLOADABLE
    close = difflib.get_close_matches(source.lower(), names, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return DatasetError(f"no dataset {source!r}{hint}: use {', '.join(names[:-1])}, or "
                        f"{names[-1]}, or a path to {_WHAT}")


def _load_named(key: str, root: str | os.PathLike | None, download: bool) -> Raw:
    folder = fetch.dataset_folder(key, root)
    if not fetch.is_downloaded(key, folder):
        if not download:
            raise DatasetError(f"{key} is not in {_display(folder)}: download it with "
                               f"--download (needs network) or pass {_HINT[key]}")
        fetch.download(key, root)
    if key == "cifar10":
        return load_cifar(folder)
    return load_idx(folder, fashion=key == "fashion-mnist")


def _load_folder(folder: Path, source: str,
                 image_shape: tuple[int, int, int] | None) -> Raw:
    if idx_folder(folder) is not None:
        return load_idx(folder, fashion="fashion" in str(folder.resolve()).lower()
                        or "fashion" in source.lower())
    if cifar_folder(folder) is not None:
        return load_cifar(folder)
    if is_yolo_folder(folder):      # before is_seg_folder, which takes any images/
        return load_yolo_folder(folder, image_shape)
    if is_seg_folder(folder):
        return load_seg_folder(folder, image_shape)
    if is_image_folder(folder) or any(p.is_dir() for p in folder.iterdir()):
        return load_image_folder(folder, image_shape)
    if not any(folder.iterdir()):
        raise DatasetError(f"{folder} is empty: a dataset folder holds IDX files "
                           "(MNIST), CIFAR-10 binary batches, one sub-folder of images per "
                           "class, images/ and masks/ for segmentation, or images/ and "
                           "labels/ for detection")
    raise DatasetError(f"{folder} holds no train-images-idx3-ubyte, no data_batch_1.bin and "
                       f"no class sub-folders: pass {_WHAT}")


def _load_path(source: str, image_shape: tuple[int, int, int] | None) -> Raw:
    path = Path(source).expanduser()
    if path.is_dir():
        return _load_folder(path, source, image_shape)
    if not path.exists():
        if os.sep not in source and "/" not in source and not path.suffix:
            raise _unknown(source)
        raise DatasetError(f"no file or folder {source!r}: pass one of "
                           f"{', '.join(BUILTIN + DOWNLOADABLE)}, or a path to {_WHAT}")
    if path.suffix.lower() == ".npz":
        return load_npz(path)
    if "idx" in path.name or path.suffix == ".bin":
        raise DatasetError(f"{source} is one file of a dataset: pass the folder holding it "
                           "and its companions")
    raise DatasetError(f"cannot read {source}: Convas reads .npz files (arrays x and y), or "
                       "folders of IDX files, CIFAR-10 binary batches or images (one "
                       "sub-folder per class)")


def load_dataset(source: str, *, val_fraction: float = 0.2, seed: int = 0,
                 classes: Sequence[str] | None = None, limit: int | None = None,
                 image_shape: tuple[int, int, int] | None = None,
                 root: str | os.PathLike | None = None, download: bool = False,
                 options: Mapping[str, Any] | None = None,
                 val_limit: int | None = None) -> Dataset:
    """Load ``source`` (a name or a path) split into training and validation sets.

    ``val_fraction`` of each class is held out (deterministic from ``seed``) unless the
    source has its own test split. ``classes`` keeps only those classes, relabelled
    0..k-1 in the given order. ``limit`` / ``val_limit`` cap the training / validation
    images, drawn evenly from the classes. For a segmentation set the split and limits
    draw images at random, and ``classes`` keeps the named classes and ignores (255) the
    other classes' pixels; for a detection set likewise, ``classes`` keeping only the
    named classes' boxes (an image left without a box stays, as a background image).
    ``image_shape`` (C, H, W) applies where the images have no fixed size (image,
    segmentation and detection folders; masks resize by nearest neighbour, boxes scale
    with their images).
    ``root`` is where named downloadable sets live; ``download`` fetches one that is not
    there. ``options`` are dataset-specific (shapes, shapes-seg, shapes-det: size, count,
    noise). ``Dataset.task`` says whether the labels are one class an image, a mask or
    boxes (SPEC §7).
    """
    source = os.fspath(source)
    if not 0 <= val_fraction < 1:
        raise DatasetError(f"val_fraction {val_fraction} must be at least 0 and below 1")
    for label, value in (("limit", limit), ("val_limit", val_limit)):
        if value is not None and int(value) < 1:
            raise DatasetError(f"{label} {value} must be at least 1 image")
    if image_shape is not None and len(tuple(image_shape)) != 3:
        raise DatasetError(f"image size {image_shape} must be (channels, height, width)")
    key = dataset_key(source)
    if key in BUILTIN:
        raw = load_builtin(key, seed=seed, classes=classes, options=options)
    else:
        if options:
            raise DatasetError(f"{source} takes no options, got "
                               f"{', '.join(map(str, options))}")
        if key in DOWNLOADABLE:
            raw = _load_named(key, root, download)
        else:
            raw = _load_path(source, tuple(image_shape) if image_shape else None)
    if key in ("shapes-seg", "shapes-det"):
        classes = None      # drawn only the chosen glyphs (shapes-seg: background is class 0)
    return build_dataset(key or source, raw, val_fraction=val_fraction, seed=seed,
                         classes=classes, limit=None if limit is None else int(limit),
                         val_limit=None if val_limit is None else int(val_limit))
