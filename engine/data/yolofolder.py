"""Detection folders in the YOLO layout: images with a text file of boxes each (SPEC §7).

Three arrangements, told apart from segmentation folders by ``labels/`` (not
``masks/``) beside ``images/``:

- ``images/`` and ``labels/`` (no split: the images are split at random);
- ``train/`` and ``val/`` (or ``valid/``, ``test/``), each holding ``images/`` and
  ``labels/``;
- Ultralytics' ``images/train``, ``images/val``, ``labels/train``, ``labels/val``.

``labels/STEM.txt`` belongs to the image ``images/STEM.*``; each line is ``class cx cy
w h``, the class a 0-based index and the rest relative to the image's size (0–1). An
image without a label file, or with an empty one, has no boxes (a background image). A
label file without an image is ignored, as YOLO tools do (datasets are often filtered
by deleting images), unless no label file matches any image: then the names are
surely mismatched and the folder is refused. A box of zero width or height is dropped.

Class names come from ``classes.txt`` (one a line) or ``data.yaml``'s ``names`` (a
list, or a mapping index → name as Ultralytics writes it), beside ``images/`` or in
the training split's folder; without either, classes are numbered "0".."K-1" up to
the largest index used. Images are resized bilinearly to the requested size and the
relative boxes scaled to its pixels, so a box lands exactly where its image went.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from .imagefolder import _SPLITS, EXTENSIONS, decode_image, read_format
from .prepare import Raw
from .segfolder import files_by_stem, read_classes
from .sets import DatasetError

_EPS = 1e-6                 # rounding slack on the 0–1 range of relative coordinates
_LINE_HINT = "each line is 'class cx cy w h', the class an index from 0, the rest 0 to 1"

# One image's boxes: rows (class, cx, cy, w, h), class an int, the rest relative.
Labels = list[tuple[int, float, float, float, float]]
Split = tuple[Path, Path]   # (images folder, labels folder)


def _is_dir(path: Path) -> bool:
    return path.is_dir() and not path.name.startswith(".")


def _split_named(folder: Path) -> dict[str, Path]:
    """{"train": sub, "val": sub} of ``folder``'s sub-folders named as splits (in sorted
    order, so ``val/`` wins over ``test/``)."""
    return {_SPLITS[p.name.lower()]: p for p in sorted(folder.iterdir())
            if _is_dir(p) and p.name.lower() in _SPLITS}


def _holds_images(folder: Path) -> bool:
    return any(p.suffix.lower() in EXTENSIONS for p in folder.iterdir() if p.is_file())


def yolo_splits(folder: Path) -> dict[str, Split]:
    """The (images, labels) folders of each split found in ``folder``; empty if it is
    not in the YOLO layout: ``masks/`` beside ``images/`` makes a segmentation folder,
    and images in ``labels/`` a class-per-sub-folder set whose classes are so named."""
    images, labels = folder / "images", folder / "labels"
    if images.is_dir() and labels.is_dir():
        if (folder / "masks").is_dir() or _holds_images(labels):
            return {}
        image_splits, label_splits = _split_named(images), _split_named(labels)
        if "train" in image_splits and "train" in label_splits:     # Ultralytics
            return {name: (image_splits[name], label_splits[name])
                    for name in image_splits if name in label_splits}
        return {"train": (images, labels)}
    out: dict[str, Split] = {}
    for name, sub in _split_named(folder).items():
        if (sub / "images").is_dir() and (sub / "labels").is_dir() \
                and not (sub / "masks").is_dir() and not _holds_images(sub / "labels"):
            out[name] = (sub / "images", sub / "labels")
    return out if "train" in out else {}


def is_yolo_folder(folder: Path) -> bool:
    """True for ``images/`` with ``labels/`` beside it, at the top, under split folders,
    or split inside them (Ultralytics)."""
    return bool(yolo_splits(folder))


def _number(text: str, path: Path, line_no: int, what: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise DatasetError(f"{path} line {line_no}: {what} {text!r} is not a number; "
                           f"{_LINE_HINT}") from None


def read_label_file(path: Path) -> Labels:
    """The boxes of one label file, every value checked; blank lines are skipped."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise DatasetError(f"cannot read label file {path}: {e}") from None
    boxes: Labels = []
    for line_no, line in enumerate(text.splitlines(), start=1):
        fields = line.split()
        if not fields:
            continue
        if len(fields) != 5:
            polygon = " (a polygon? Convas reads boxes only)" if len(fields) > 5 else ""
            raise DatasetError(f"{path} line {line_no}: {len(fields)} values{polygon}; "
                               f"{_LINE_HINT}")
        value = _number(fields[0], path, line_no, "class")
        if not math.isfinite(value) or value != int(value) or value < 0:
            raise DatasetError(f"{path} line {line_no}: class {fields[0]!r} is not a class "
                               f"index (0, 1, 2, …); {_LINE_HINT}")
        rel = []
        for name, text_value in zip(("cx", "cy", "w", "h"), fields[1:], strict=True):
            v = _number(text_value, path, line_no, name)
            if not -_EPS <= v <= 1 + _EPS:
                raise DatasetError(
                    f"{path} line {line_no}: {name} = {text_value} is outside 0–1; YOLO "
                    "labels give centre and size relative to the image (divide pixels by "
                    "the image's width or height)")
            rel.append(min(max(v, 0.0), 1.0))
        if rel[2] > 0 and rel[3] > 0:
            boxes.append((int(value), rel[0], rel[1], rel[2], rel[3]))
    return boxes


def _names_from_yaml(path: Path) -> list[str] | None:
    import yaml

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as e:
        raise DatasetError(f"cannot read {path}: {e}") from None
    names = data.get("names") if isinstance(data, dict) else None
    if names is None:
        return None
    if isinstance(names, dict):
        try:
            table = {int(k): str(v) for k, v in names.items()}
        except (TypeError, ValueError):
            raise DatasetError(f"{path}: names maps {list(names)[:3]}…; map class indices "
                               "(0, 1, …) to names, or list the names in order") from None
        if not table or min(table) < 0:
            raise DatasetError(f"{path}: names needs class indices from 0")
        listed = [table.get(i, str(i)) for i in range(max(table) + 1)]
    elif isinstance(names, list):
        listed = [str(n) for n in names]
    else:
        raise DatasetError(f"{path}: names is {names!r}; give a list of class names, or a "
                           "mapping index: name")
    if not listed:
        raise DatasetError(f"{path}: names is empty: name at least one class")
    if len(set(listed)) != len(listed):
        raise DatasetError(f"{path}: names lists a class twice: each class once")
    return listed


def class_names(folder: Path, splits: dict[str, Split]) -> tuple[list[str], Path] | None:
    """Names from classes.txt, else data.yaml (or data.yml), beside images/ or in the
    training split's folder, with the file that names them; None where none does."""
    train_dir = splits["train"][0].parent
    places = [folder] + ([train_dir] if train_dir != folder else [])
    for where in places:
        if (where / "classes.txt").is_file():
            return read_classes(where / "classes.txt"), where / "classes.txt"
    for where in places:
        for name in ("data.yaml", "data.yml"):
            if (where / name).is_file():
                names = _names_from_yaml(where / name)
                if names is not None:
                    return names, where / name
    return None


def _pairs(images: Path, labels: Path) -> list[tuple[Path, Path | None]]:
    """Each image with its label file (None where it has none)."""
    files = files_by_stem(images, EXTENSIONS, ", so one label file would serve both: keep one")
    if not files:
        raise DatasetError(f"{images} holds no images ({', '.join(sorted(EXTENSIONS))}): "
                           "add the images whose boxes labels/ holds")
    texts = {p.stem: p for p in sorted(labels.iterdir())
             if p.is_file() and p.suffix.lower() == ".txt" and not p.name.startswith(".")}
    if texts and not set(texts) & set(files):
        example = next(iter(texts.values()))
        raise DatasetError(f"no label file in {labels} matches an image in {images} (e.g. "
                           f"{example.name}): name each label file after its image, "
                           "e.g. images/cat1.jpg and labels/cat1.txt")
    return [(path, texts.get(stem)) for stem, path in files.items()]


def _read_split(pairs: list[tuple[Path, Path | None]], channels: int, size: tuple[int, int],
                fixed: bool) -> tuple[np.ndarray, list[Labels]]:
    images, boxes = [], []
    for image_path, label_path in pairs:
        arr, own = decode_image(image_path, channels, size if fixed else None)
        if not fixed and arr.shape[1:] != size:
            raise DatasetError(
                f"{image_path} is {own[0]}×{own[1]} pixels but the first image is "
                f"{size[1]}×{size[0]}: pass an image size (e.g. {channels}×{size[0]}×"
                f"{size[1]}) to resize every image to it")
        images.append(arr)
        boxes.append(read_label_file(label_path) if label_path is not None else [])
    return np.stack(images), boxes


def to_rows(boxes: list[Labels], size: tuple[int, int]) -> np.ndarray:
    """float32 [N, M, 5] rows (class, x1, y1, x2, y2) in pixels of ``size`` (H, W),
    padded with (-1, 0, 0, 0, 0); M is the most boxes of an image, at least 1."""
    h, w = size
    m = max([1] + [len(b) for b in boxes])
    y = np.zeros((len(boxes), m, 5), dtype=np.float32)
    y[:, :, 0] = -1
    for i, labels in enumerate(boxes):
        for j, (cls, cx, cy, bw, bh) in enumerate(labels):
            y[i, j] = (cls, max(cx - bw / 2, 0.0) * w, max(cy - bh / 2, 0.0) * h,
                       min(cx + bw / 2, 1.0) * w, min(cy + bh / 2, 1.0) * h)
    return y


def _check_classes(boxes: list[Labels], pairs: list[tuple[Path, Path | None]],
                   names: list[str], source: Path) -> None:
    for labels, (_, label_path) in zip(boxes, pairs, strict=True):
        for cls, *_ in labels:
            if cls >= len(names):
                line_no = _line_of_class(label_path, cls) if label_path else 0
                raise DatasetError(
                    f"{label_path} line {line_no}: class {cls} but {source} names only "
                    f"{len(names)} classes ({', '.join(names[:8])}"
                    f"{', …' if len(names) > 8 else ''}): fix the label or name every class")


def _line_of_class(path: Path, cls: int) -> int:
    """The first line of ``path`` whose class is ``cls`` (for the message only)."""
    for line_no, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        fields = line.split()
        if fields and float(fields[0]) == cls:
            return line_no
    return 0


def load_yolo_folder(folder: Path, image_shape: tuple[int, int, int] | None = None) -> Raw:
    """Read every image and label file; ``image_shape`` (C, H, W) fixes grey/RGB and the
    size the images are resized to (and the boxes scaled to)."""
    splits = yolo_splits(folder)
    if "train" not in splits:
        raise DatasetError(f"{folder} has no images/ with labels/ beside it (nor train/ "
                           "holding them): a YOLO folder pairs each image with a text file "
                           "of boxes of the same name")
    named = class_names(folder, splits)
    train = _pairs(*splits["train"])
    val = _pairs(*splits["val"]) if "val" in splits else None
    channels, size, fixed = read_format(image_shape, train[0][0])
    x, boxes = _read_split(train, channels, size, fixed)
    val_x = val_boxes = None
    if val is not None:
        val_x, val_boxes = _read_split(val, channels, size, fixed)
    if named is not None:
        names, source = named
        _check_classes(boxes, train, names, source)
        if val is not None and val_boxes is not None:
            _check_classes(val_boxes, val, names, source)
    else:
        top = max([-1] + [c for b in boxes + (val_boxes or []) for c, *_ in b])
        if top < 0:
            raise DatasetError(f"{folder}: no label file holds a box: add lines "
                               "'class cx cy w h' to labels/")
        names = [str(i) for i in range(top + 1)]
    val_y = None if val_boxes is None else to_rows(val_boxes, size)
    return Raw(x, to_rows(boxes, size), names, val_x, val_y, task="detection")
