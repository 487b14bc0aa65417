"""What the trainer reports, as plain data (numbers, strings, numpy arrays).

The GUI turns these into queued Qt signals and the command line into a progress bar;
neither needs to know anything about torch.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np


@dataclass(frozen=True)
class ReadyEvent:
    """The data are loaded and the model is built: what a view needs before step one
    (class names, sizes, the device) without reaching into the trainer, which may live
    in another process."""

    dataset: str
    classes: list[str]
    train_size: int
    val_size: int
    image_shape: tuple[int, int, int]
    steps_per_epoch: int
    epochs: int
    start_epoch: int
    device: str                      # 'CPU (1 thread)', 'NVIDIA H100 … (79.1 GiB)'
    precision: str                   # fp32, bf16 or fp16 (autocast)
    probe_images: np.ndarray         # [N,C,H,W] as stored in the dataset (uint8 or 0..1)


@dataclass(frozen=True)
class StepEvent:
    """Training progress, averaged over the steps since the previous StepEvent."""

    epoch: int              # 1-based
    step: int               # 1-based step within the epoch
    steps_per_epoch: int
    global_step: int
    total_steps: int
    loss: float
    accuracy: float
    lr: float
    images_per_s: float
    elapsed: float          # seconds since the run started


@dataclass(frozen=True)
class EpochEvent:
    epoch: int
    epochs: int
    train_loss: float
    train_accuracy: float
    val_loss: float | None
    val_accuracy: float | None
    confusion: np.ndarray | None   # [true, predicted] counts on the validation set
    seconds: float
    lr: float
    # The most confident mistakes on the validation set, most confident first; images as
    # stored in the dataset ([K,C,H,W], uint8 or 0..1), labels as class indexes.
    wrong_images: np.ndarray | None = None
    wrong_true: np.ndarray | None = None
    wrong_predicted: np.ndarray | None = None
    wrong_confidence: np.ndarray | None = None

    @property
    def wrong_count(self) -> int | None:
        """Misclassified validation images in all (the gallery shows only some)."""
        if self.confusion is None:
            return None
        return int(self.confusion.sum() - np.trace(self.confusion))

    @property
    def per_class_accuracy(self) -> np.ndarray | None:
        if self.confusion is None:
            return None
        totals = self.confusion.sum(axis=1)
        return np.divide(np.diag(self.confusion), totals,
                         out=np.full(len(totals), np.nan), where=totals > 0)

    def row(self) -> dict[str, Any]:
        """One row of metrics.csv (SPEC §4 columns first)."""
        return {"epoch": self.epoch, "train_loss": self.train_loss,
                "train_accuracy": self.train_accuracy, "val_loss": self.val_loss,
                "val_accuracy": self.val_accuracy, "seconds": round(self.seconds, 3),
                "lr": self.lr}


@dataclass(frozen=True)
class FeatureMapEvent:
    """A block's output for one fixed probe image: [C,H,W] maps or an [F] vector."""

    global_step: int
    node: str
    maps: np.ndarray
    probe_index: int
    kernels: np.ndarray | None = None  # [out,in,kh,kw] when the block is a convolution


@dataclass(frozen=True)
class DoneEvent:
    stopped: bool                    # True when stop() ended the run early
    epochs_completed: int
    checkpoint: Path | None
    metrics: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class FailedEvent:
    """The run could not go on. ``reason`` is meant for a person, with what to do."""

    kind: str                        # nan, oom, data, graph, device, config, io, error
    reason: str
    checkpoint: Path | None = None   # the last good checkpoint, when there is one
    suggestion: dict[str, Any] = field(default_factory=dict)
    details: str = ""                # a traceback, for unexpected errors only


Event = ReadyEvent | StepEvent | EpochEvent | FeatureMapEvent | DoneEvent | FailedEvent
