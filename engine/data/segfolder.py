"""Segmentation folders: images with a mask of class indices each (SPEC §7).

Two layouts, told apart from classification image folders by their folder names:

- ``images/`` and ``masks/`` with the same file stems, optionally under ``train/`` and
  ``val/``. A mask is a PNG: single-channel or palette mode, whose values are class
  indices (255 = ignore), named by ``classes.txt`` (one a line) if present, else
  ``class_0``…; or RGB, whose colours ``labelmap.txt`` maps to classes, one a line as
  ``name:r,g,b::`` (the course notes' class-to-RGB format, as CVAT writes it).
- PASCAL VOC 2012 as it unpacks: ``JPEGImages/``, ``SegmentationClass/`` (palette PNGs)
  and ``ImageSets/Segmentation/train.txt`` / ``val.txt``, with VOC's 21 classes.

Images are resized bilinearly and masks by nearest neighbour to the requested size,
so a resized mask holds only values its source held.
"""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path

import numpy as np

from .imagefolder import _SPLITS, EXTENSIONS, _decode, read_format
from .prepare import IGNORE, Raw
from .sets import DatasetError

VOC_CLASSES: tuple[str, ...] = (
    "background", "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat",
    "chair", "cow", "diningtable", "dog", "horse", "motorbike", "person", "pottedplant",
    "sheep", "sofa", "train", "tvmonitor")
_INDEX_MODES = {"P", "L", "1", "I", "I;16", "I;16B", "I;16L", "LA", "PA"}
_LABELMAP_HINT = "one class a line as name:r,g,b:: (e.g. background:0,0,0::)"

Pairs = list[tuple[Path, Path]]


def voc_root(folder: Path) -> Path | None:
    """The VOC2012 folder at or just below ``folder`` (VOCdevkit/VOC2012 unpacked)."""
    for cand in (folder, folder / "VOC2012", folder / "VOCdevkit" / "VOC2012"):
        if (cand / "SegmentationClass").is_dir() and (cand / "JPEGImages").is_dir():
            return cand
    return None


def _split_dirs(folder: Path) -> dict[str, Path]:
    """{"train": dir, "val": dir} of the folders holding images/ and masks/."""
    if (folder / "images").is_dir() or (folder / "masks").is_dir():
        return {"train": folder}
    return {_SPLITS[p.name.lower()]: p for p in sorted(folder.iterdir())
            if p.is_dir() and p.name.lower() in _SPLITS
            and ((p / "images").is_dir() or (p / "masks").is_dir())}


def is_seg_folder(folder: Path) -> bool:
    """True for the images/ + masks/ layout (at the top or under train/) or VOC's."""
    return voc_root(folder) is not None or "train" in _split_dirs(folder)


def files_by_stem(folder: Path, suffixes: Collection[str], clash: str) -> dict[str, Path]:
    """``folder``'s visible files with one of ``suffixes`` (lower case), by stem, in name
    order: the stem is what pairs an image with its mask or label file, so two files of
    one stem are refused, the message ending in ``clash`` (why that matters there)."""
    files: dict[str, Path] = {}
    for p in sorted(folder.iterdir()):
        if p.is_file() and p.suffix.lower() in suffixes and not p.name.startswith("."):
            if p.stem in files:
                raise DatasetError(f"{files[p.stem].name} and {p.name} in {folder} share a "
                                   f"name{clash}")
            files[p.stem] = p
    return files


def _by_stem(folder: Path, suffixes: frozenset[str]) -> dict[str, Path]:
    if not folder.is_dir():
        raise DatasetError(f"{folder.parent} has no {folder.name}/ folder: a segmentation "
                           "folder holds images/ and masks/ with the same file names")
    return files_by_stem(folder, suffixes, ": keep one file per image")


def _pairs(split: Path) -> Pairs:
    images = _by_stem(split / "images", EXTENSIONS)
    masks = _by_stem(split / "masks", frozenset({".png"}))
    if not images:
        raise DatasetError(f"{split / 'images'} holds no images "
                           f"({', '.join(sorted(EXTENSIONS))}): add images and their masks")
    for stem, path in images.items():
        if stem not in masks:
            raise DatasetError(f"image {path} has no mask: add masks/{stem}.png (a PNG of "
                               "class indices, or RGB colours listed in labelmap.txt)")
    extra = sorted(set(masks) - set(images))
    if extra:
        raise DatasetError(f"mask {masks[extra[0]]} has no image in {split / 'images'}: add "
                           "the image or remove the mask")
    return [(images[s], masks[s]) for s in images]


def read_classes(path: Path) -> list[str]:
    """Class names from ``classes.txt``, one a line (blank lines skipped)."""
    names = [line.strip() for line in path.read_text(encoding="utf-8").splitlines()
             if line.strip()]
    if not names:
        raise DatasetError(f"{path} names no class: write one class name a line")
    if len(set(names)) != len(names):
        raise DatasetError(f"{path} names a class twice: each class once, one a line")
    return names


def read_labelmap(path: Path) -> tuple[list[str], dict[int, int]]:
    """Class names and {0xRRGGBB: class index} from ``labelmap.txt`` (# starts a comment)."""
    names: list[str] = []
    colours: dict[int, int] = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split(":")
        rgb = parts[1].split(",") if len(parts) > 1 else []
        try:
            r, g, b = (int(v) for v in rgb)
        except ValueError:
            raise DatasetError(f"{path} line {number}: {line!r} is not {_LABELMAP_HINT}"
                               ) from None
        name = parts[0].strip()
        if not name or not all(0 <= v <= 255 for v in (r, g, b)):
            raise DatasetError(f"{path} line {number}: {line!r} needs a name and colour "
                               f"values 0..255: {_LABELMAP_HINT}")
        code = (r << 16) | (g << 8) | b
        if name in names or code in colours:
            what = f"class {name!r}" if name in names else f"colour ({r}, {g}, {b})"
            raise DatasetError(f"{path} line {number}: {what} is listed twice")
        colours[code] = len(names)
        names.append(name)
    if not names:
        raise DatasetError(f"{path} lists no class: {_LABELMAP_HINT}")
    return names, colours


def _to_indices(path: Path, rgb: np.ndarray, colours: dict[int, int]) -> np.ndarray:
    rgb = rgb.astype(np.int32)
    code = (rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2]
    values, inverse = np.unique(code, return_inverse=True)
    lookup = np.empty(len(values), dtype=np.uint8)
    for i, v in enumerate(values):
        if int(v) not in colours:
            r, g, b = int(v) >> 16, (int(v) >> 8) & 255, int(v) & 255
            count = int((inverse == i).sum())
            raise DatasetError(f"mask {path} has the colour ({r}, {g}, {b}) ({count:,} "
                               f"pixels), which labelmap.txt does not list: add a line "
                               f"name:{r},{g},{b}:: for it or recolour those pixels")
        lookup[i] = colours[int(v)]
    return lookup[inverse.reshape(code.shape)]


def _read_mask(path: Path, colours: dict[int, int] | None) -> np.ndarray:
    """The mask as uint8 class indices [H, W]."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as img:
            if img.mode in ("LA", "PA"):
                img = img.getchannel(0)
            if img.mode in _INDEX_MODES:
                arr = np.asarray(img)
                if arr.dtype == bool or arr.max(initial=0) <= 255:
                    arr = arr.astype(np.uint8)
                else:
                    raise DatasetError(f"mask {path} holds the value {int(arr.max())}: class "
                                       "indices run 0..254 (255 = ignore)")
            elif colours is None:
                raise DatasetError(
                    f"mask {path} is {img.mode}, not class indices: add labelmap.txt beside "
                    f"images/ mapping its colours to classes ({_LABELMAP_HINT}), or save "
                    "masks as single-channel or palette PNGs of class indices")
            else:
                arr = _to_indices(path, np.asarray(img.convert("RGB")), colours)
    except (OSError, UnidentifiedImageError) as e:
        raise DatasetError(f"cannot read mask {path}: {e}") from None
    return arr


def resize_mask(mask: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """``mask`` [H, W] at ``size`` (H, W) by nearest neighbour: no value is invented."""
    from PIL import Image

    if mask.shape == size:
        return mask
    return np.asarray(Image.fromarray(mask).resize((size[1], size[0]),
                                                   Image.Resampling.NEAREST))


def _image_size(path: Path) -> tuple[int, int]:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as img:
            return img.size[1], img.size[0]
    except (OSError, UnidentifiedImageError) as e:
        raise DatasetError(f"cannot read image {path}: {e}") from None


def _read_pairs(pairs: Pairs, colours: dict[int, int] | None, classes: list[str] | None,
                channels: int, size: tuple[int, int],
                fixed: bool) -> tuple[np.ndarray, np.ndarray]:
    images, masks = [], []
    for image_path, mask_path in pairs:
        mask = _read_mask(mask_path, colours)
        if classes is not None:
            _check_values(mask, classes, mask_path)
        own = _image_size(image_path)
        if mask.shape != own:
            raise DatasetError(f"mask {mask_path} is {mask.shape[1]}×{mask.shape[0]} pixels "
                               f"but its image {image_path} is {own[1]}×{own[0]}: a mask "
                               "must match its image's size")
        if fixed:
            mask = resize_mask(mask, size)
        elif own != size:
            raise DatasetError(
                f"{image_path} is {own[1]}×{own[0]} pixels but the first image is "
                f"{size[1]}×{size[0]}: pass an image size (e.g. {channels}×{size[0]}×"
                f"{size[1]}) to resize every image to it")
        images.append(_decode(image_path, channels, size if fixed else None))
        masks.append(mask)
    return np.stack(images), np.stack(masks)


def _check_values(mask: np.ndarray, classes: list[str], path: Path) -> None:
    bad = mask[(mask != IGNORE) & (mask >= len(classes))]
    if bad.size:
        raise DatasetError(f"mask {path} holds class {int(bad.max())} but there are only "
                           f"{len(classes)} classes ({', '.join(classes)}): fix the mask or "
                           "name every class in classes.txt (255 marks pixels to ignore)")


def numbered_classes(masks: list[np.ndarray]) -> list[str]:
    """``class_0`` … up to the largest index in the masks, where no file names them."""
    top = max(int(m[m != IGNORE].max(initial=0)) for m in masks)
    return [f"class_{i}" for i in range(top + 1)]


def _voc_pairs(root: Path, name: str) -> Pairs | None:
    listing = root / "ImageSets" / "Segmentation" / f"{name}.txt"
    if not listing.is_file():
        return None
    pairs = []
    for stem in listing.read_text(encoding="utf-8").split():
        image = root / "JPEGImages" / f"{stem}.jpg"
        mask = root / "SegmentationClass" / f"{stem}.png"
        if not image.is_file():
            raise DatasetError(f"{listing} lists {stem} but {image} is missing")
        if not mask.is_file():
            raise DatasetError(f"image {image} has no mask: {mask} is missing")
        pairs.append((image, mask))
    if not pairs:
        raise DatasetError(f"{listing} lists no image")
    return pairs


def _voc_splits(root: Path) -> tuple[Pairs, Pairs | None]:
    train = _voc_pairs(root, "train")
    if train is None:
        masks = sorted((root / "SegmentationClass").glob("*.png"))
        if not masks:
            raise DatasetError(f"{root / 'SegmentationClass'} holds no masks (.png)")
        train = []
        for mask in masks:
            image = root / "JPEGImages" / f"{mask.stem}.jpg"
            if not image.is_file():
                raise DatasetError(f"mask {mask} has no image: {image} is missing")
            train.append((image, mask))
    return train, _voc_pairs(root, "val")


def _class_names(folder: Path, splits: dict[str, Path]) -> tuple[list[str] | None,
                                                                 dict[int, int] | None]:
    """Names from classes.txt and colours from labelmap.txt, at the top or in train/."""
    names = colours = None
    for where in (folder, splits.get("train", folder)):
        if colours is None and (where / "labelmap.txt").is_file():
            names, colours = read_labelmap(where / "labelmap.txt")
    for where in (folder, splits.get("train", folder)):
        if (where / "classes.txt").is_file():
            listed = read_classes(where / "classes.txt")
            if names is not None and listed != names:
                raise DatasetError(f"{where / 'classes.txt'} and labelmap.txt name different "
                                   "classes: keep one of them, or list the same names in "
                                   "the same order")
            return listed, colours
    return names, colours


def load_seg_folder(folder: Path, image_shape: tuple[int, int, int] | None = None) -> Raw:
    """Read every image and mask; ``image_shape`` (C, H, W) fixes grey/RGB and the size."""
    root = voc_root(folder)
    if root is not None:
        train, val = _voc_splits(root)
        classes, colours = list(VOC_CLASSES), None
    else:
        splits = _split_dirs(folder)
        if "train" not in splits:
            raise DatasetError(f"{folder} has no images/ and masks/ folders (nor train/ "
                               "holding them): a segmentation folder pairs each image with "
                               "a mask of the same name")
        train = _pairs(splits["train"])
        val = _pairs(splits["val"]) if "val" in splits else None
        classes, colours = _class_names(folder, splits)
    channels, size, fixed = read_format(image_shape, train[0][0])
    x, y = _read_pairs(train, colours, classes, channels, size, fixed)
    val_x = val_y = None
    if val is not None:
        val_x, val_y = _read_pairs(val, colours, classes, channels, size, fixed)
    if classes is None:
        classes = numbered_classes([y] if val_y is None else [y, val_y])
    return Raw(x, y, classes, val_x, val_y, task="segmentation")
