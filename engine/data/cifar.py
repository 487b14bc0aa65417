"""CIFAR-10, binary version: ``data_batch_1..5.bin`` and ``test_batch.bin``.

Each record is one label byte and 3,072 pixel bytes (1,024 red, green, blue, row by
row), already the [C, H, W] layout. The binary version is read, never the Python
one, because unpickling a downloaded file can run code.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from .prepare import Raw
from .sets import DatasetError

CLASSES: tuple[str, ...] = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog",
                            "horse", "ship", "truck")
SUBFOLDER = "cifar-10-batches-bin"
_RECORD = 1 + 3 * 32 * 32
_BATCH = re.compile(r"data_batch_(\d+)\.bin")


def _batches(folder: Path) -> list[Path]:
    found = [(int(m.group(1)), p) for p in folder.iterdir() if (m := _BATCH.fullmatch(p.name))]
    return [p for _, p in sorted(found)]


def cifar_folder(folder: Path) -> Path | None:
    """The folder holding ``data_batch_*.bin``: ``folder`` or its ``cifar-10-batches-bin``."""
    for where in (folder, folder / SUBFOLDER):
        if where.is_dir() and _batches(where):
            return where
    return None


def read_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Images uint8 [N, 3, 32, 32] and labels of one binary batch file."""
    try:
        data = path.read_bytes()
    except OSError as e:
        raise DatasetError(f"cannot read {path}: {e}") from None
    if len(data) == 0 or len(data) % _RECORD:
        raise DatasetError(f"{path} holds {len(data):,} bytes, not a whole number of "
                           f"{_RECORD:,}-byte CIFAR-10 records: the file is truncated or not "
                           "from the binary version; download it again")
    records = np.frombuffer(data, dtype=np.uint8).reshape(-1, _RECORD)
    return records[:, 1:].reshape(-1, 3, 32, 32), records[:, 0].astype(np.int64)


def _class_names(where: Path) -> list[str]:
    meta = where / "batches.meta.txt"
    if meta.is_file():
        names = [line.strip() for line in meta.read_text(errors="replace").splitlines()]
        names = [n for n in names if n]
        if names:
            return names
    return list(CLASSES)


def load_cifar(folder: Path) -> Raw:
    """Read every training batch and, where present, the test batch (the validation split)."""
    where = cifar_folder(folder)
    if where is None:
        raise DatasetError(f"{folder} has no data_batch_1.bin: not a CIFAR-10 binary folder")
    parts = [read_batch(p) for p in _batches(where)]
    x = np.concatenate([p[0] for p in parts])
    y = np.concatenate([p[1] for p in parts])
    val_x = val_y = None
    if (where / "test_batch.bin").is_file():
        val_x, val_y = read_batch(where / "test_batch.bin")
    classes = _class_names(where)
    top = int(max(y.max(), -1 if val_y is None else val_y.max()))
    if top >= len(classes):
        raise DatasetError(f"{where} has label {top} but only {len(classes)} class names "
                           "(batches.meta.txt); is it CIFAR-100? Convas reads CIFAR-10")
    return Raw(x, y, classes, val_x, val_y)
