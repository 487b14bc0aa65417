"""A look at the chosen dataset before training: a few samples, its size and classes.

Loading a dataset can take a second (MNIST's 70,000 images) or need a download, so it
happens in a background thread and the result comes back as plain data through a
queued signal. Each answer carries its request's number and is checked in the GUI
thread, where requests are made: an answer to anything but the newest request is
dropped, however late it arrives.
The same thread lists the devices (which needs torch, kept out of start-up).
"""

from __future__ import annotations

import gc
import json
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from PySide6.QtCore import QObject, Qt, Signal

PREVIEW_IMAGES = 16


@dataclass(frozen=True)
class DatasetPreview:
    source: str
    description: str                    # 'shapes: 2,400 train / 600 val images, ...'
    image_shape: tuple[int, int, int]
    classes: list[str]
    images: np.ndarray                  # [N,C,H,W] as stored (uint8 or 0..1)
    labels: np.ndarray                  # [N] class indexes (a mask's or boxes' main class)
    task: str = "classification"        # or "segmentation" (masks), "detection" (boxes)
    masks: np.ndarray | None = None     # segmentation: the samples' masks [N,H,W]
    boxes: np.ndarray | None = None     # detection: the samples' box rows [N,M,5]


@dataclass(frozen=True)
class PreviewFailure:
    source: str
    message: str
    downloadable: bool                  # a named set that is not on this computer yet


def pick_samples(labels: np.ndarray, classes: int, count: int = PREVIEW_IMAGES) -> np.ndarray:
    """Indexes of up to ``count`` samples spread over the classes (round robin), so a
    two-class set shows both classes and a ten-class set shows every one."""
    per_class = [np.flatnonzero(labels == k) for k in range(classes)]
    picked: list[int] = []
    depth = 0
    while len(picked) < count and any(depth < len(p) for p in per_class):
        for p in per_class:
            if depth < len(p) and len(picked) < count:
                picked.append(int(p[depth]))
        depth += 1
    return np.asarray(picked, dtype=np.int64)


def load_run_dataset(source: str, image_shape: tuple[int, int, int] | None,
                     settings: Mapping[str, Any]) -> Any:
    """``source`` loaded as a run with the design's ``training`` ``settings`` would load
    it (split, seed, classes, limit, dataset options), so what the preview shows and what
    Fit Anchors fits to are the run's own images. Slow (torch, maybe a large file): call
    it off the GUI thread; raises engine.data.DatasetError for a bad source."""
    from engine.data import load_dataset

    return load_dataset(source, image_shape=image_shape,
                        val_fraction=settings.get("val_fraction", 0.2),
                        seed=settings.get("seed", 0), classes=settings.get("classes"),
                        limit=settings.get("limit"), options=settings.get("dataset_options"))


class DatasetScout(QObject):
    """Loads previews and downloads in a background thread; create it in the GUI thread."""

    previewed = Signal(object)          # DatasetPreview or PreviewFailure
    devices = Signal(list)              # [(value, label)]
    download_progress = Signal(str, int, int)   # name, bytes done, bytes in all
    downloaded = Signal(str, str)       # name, error message ("" when it worked)
    _answer = Signal(int, object)       # worker → GUI thread: request number, result

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._request = 0
        self._lock = threading.Lock()
        self._cache: dict[tuple, DatasetPreview] = {}
        self._threads: list[threading.Thread] = []
        self._devices_sent = False
        self._closed = False
        self._answer.connect(self._deliver, Qt.ConnectionType.QueuedConnection)

    def request(self, source: str, image_shape: tuple[int, int, int] | None = None,
                settings: Mapping[str, Any] | None = None) -> None:
        """Preview ``source`` as a run with these training ``settings`` (classes, limit,
        val_fraction, seed, dataset_options) would see it; only the newest request's
        answer is delivered."""
        with self._lock:
            self._request += 1
            number = self._request
        settings = dict(settings or {})
        key = (source, image_shape, json.dumps(settings, sort_keys=True, default=str))
        if key in self._cache:
            self._deliver(number, self._cache[key])
            return
        self._spawn(self._preview, number, key, source, image_shape, settings)

    def download(self, name: str) -> None:
        self._spawn(self._download, name)

    def wait(self, timeout: float = 30.0) -> None:
        for thread in list(self._threads):
            thread.join(timeout)

    def close(self, timeout: float = 5.0) -> None:
        """Before the window goes: no new work, and nothing more is emitted into Qt
        (a thread talking to Qt while the interpreter shuts down can crash it). A
        download still running is left to die with the process."""
        self._closed = True
        self.wait(timeout)

    def _emit(self, signal, *args) -> None:
        if not self._closed:
            signal.emit(*args)

    # ---- background threads -------------------------------------------------------------

    def _spawn(self, target, *args) -> None:
        if self._closed:
            return
        self._threads = [t for t in self._threads if t.is_alive()]
        thread = threading.Thread(target=target, args=args, daemon=True,
                                  name="convas-dataset-preview")
        self._threads.append(thread)
        thread.start()

    def _preview(self, number: int, key: tuple, source: str,
                 image_shape: tuple[int, int, int] | None, settings: dict[str, Any]) -> None:
        from engine.data import DatasetError
        from engine.data.fetch import DOWNLOADABLE
        from engine.data.load import dataset_key

        _freeze_imported_objects()
        if not self._devices_sent:
            self._devices_sent = True
            from engine.device import available_devices
            self._emit(self.devices, available_devices())
        try:
            ds = load_run_dataset(source, image_shape, settings)
        except DatasetError as exc:
            result: DatasetPreview | PreviewFailure = PreviewFailure(
                source, str(exc), dataset_key(source) in DOWNLOADABLE and "download" in str(exc))
        except Exception as exc:  # noqa: BLE001 - a preview must never take the app down
            result = PreviewFailure(source, f"cannot read {source}: {exc}", False)
        else:
            task = getattr(ds, "task", "classification")
            y = ds.train.y.numpy()
            labels = (_box_labels(y, ds.num_classes) if task == "detection"
                      else _image_labels(y, ds.num_classes))
            index = pick_samples(labels, ds.num_classes)
            rows = y[index].copy()
            result = DatasetPreview(source, ds.describe(), tuple(ds.image_shape),
                                    list(ds.classes), ds.train.x[index].numpy().copy(),
                                    labels[index].copy(), task,
                                    rows if task == "segmentation" else None,
                                    rows if task == "detection" else None)
            self._cache[key] = result
        self._emit(self._answer, number, result)

    def _deliver(self, number: int, result: DatasetPreview | PreviewFailure) -> None:
        with self._lock:
            current = number == self._request
        if current:
            self.previewed.emit(result)

    def _download(self, name: str) -> None:
        from engine.data import download

        try:
            download(name, progress=lambda done, total: self._emit(
                self.download_progress, name, int(done), int(total or 0)))
        except Exception as exc:  # noqa: BLE001 - network, disk, checksum: all said plainly
            self._emit(self.downloaded, name, str(exc))
        else:
            self._emit(self.downloaded, name, "")


MASKS_LOOKED_AT = 512  # a segmentation preview picks its samples among the first ones


def _image_labels(y: np.ndarray, classes: int) -> np.ndarray:
    """One class per image: the label itself, or for a mask [H, W] its most common
    class other than class 0 (the background) and 255 (ignored), so the preview can
    spread its samples over the classes and caption them."""
    if y.ndim == 1:
        return y
    labels = np.zeros(min(len(y), MASKS_LOOKED_AT), dtype=np.int64)
    for i, mask in enumerate(y[:len(labels)].reshape(len(labels), -1)):
        counts = np.bincount(mask[mask != 255], minlength=classes)[:classes]
        counts[0] = 0
        labels[i] = int(counts.argmax()) if counts.any() else 0
    return labels


def _box_labels(rows: np.ndarray, classes: int) -> np.ndarray:
    """One class per image of box rows [N, M, 5]: its most frequent box class (an image
    without boxes counts as class 0), so the preview spreads over the classes."""
    labels = np.zeros(min(len(rows), MASKS_LOOKED_AT), dtype=np.int64)
    for i, r in enumerate(rows[:len(labels)]):
        kept = r[:, 0][r[:, 0] >= 0].astype(np.int64)
        kept = kept[kept < classes]
        labels[i] = int(np.bincount(kept).argmax()) if len(kept) else 0
    return labels


_frozen = False


def _freeze_imported_objects() -> None:
    """Once torch is imported (the first preview does it), move the objects that exist
    to the garbage collector's permanent generation: torch leaves some 200,000
    long-lived objects, and every full collection walking them froze the window for
    about 150 ms after an edit now and then. Objects made later are collected as usual."""
    global _frozen
    if not _frozen:
        _frozen = True
        gc.freeze()

