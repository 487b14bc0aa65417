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
    task: str = "classification"     # the Output block's task (SPEC §7)
    # segmentation: the probe images' true masks, uint8 [N,H,W] of class indexes, 255 =
    # ignore, so a view can show the truth beside each PredictionEvent; detection: their
    # box rows float32 [N,M,5] (class, x1, y1, x2, y2 in input pixels; class −1 rows are
    # padding); None otherwise
    probe_targets: np.ndarray | None = None
    # Started from a checkpoint (TrainConfig.init, SPEC §8): the nodes that took its
    # weights and those that start fresh, in graph order; both empty without one.
    init_loaded: list[str] = field(default_factory=list)
    init_fresh: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class StepEvent:
    """Training progress, averaged over the steps since the previous StepEvent."""

    epoch: int              # 1-based
    step: int               # 1-based step within the epoch
    steps_per_epoch: int
    global_step: int
    total_steps: int
    loss: float
    accuracy: float         # of images, or for segmentation of labelled pixels
    lr: float
    images_per_s: float
    elapsed: float          # seconds since the run started


@dataclass(frozen=True)
class EpochEvent:
    """The end of an epoch. For segmentation the accuracies and the confusion matrix
    count labelled pixels instead of images, and ``metrics`` holds the task's
    metrics.csv values (pixel accuracy, mIoU, IoU per class; SPEC §7)."""

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
    task: str = "classification"
    # Segmentation's counterpart (the gallery's "worst IoU" view): the validation images
    # with the lowest IoU of their own, lowest first; images as stored ([K,C,H,W]), true
    # and predicted masks uint8 [K,H,W] (255 = ignore in the true ones), and each image's
    # mIoU over the classes in its true or predicted mask, ignored pixels left out.
    worst_images: np.ndarray | None = None
    worst_true: np.ndarray | None = None
    worst_predicted: np.ndarray | None = None
    worst_iou: np.ndarray | None = None
    # Detection's: ``worst_images`` are then the validation images with the most missed
    # plus false boxes (IoU 0.5, scores ≥ 0.25), most first; per image its true rows
    # float32 [G,5] (class, x1, y1, x2, y2), its detections float32 [D,6] (class, score,
    # x1, y1, x2, y2) and int [K,2] (missed, false) counts.
    worst_true_boxes: list[np.ndarray] | None = None
    worst_detections: list[np.ndarray] | None = None
    worst_errors: np.ndarray | None = None
    # metrics.csv columns beyond the classifier's (val_miou, val_iou_<class>, ...);
    # None where there is no value (a class absent from the validation set)
    metrics: dict[str, float | None] = field(default_factory=dict)

    @property
    def miou(self) -> float | None:
        """Validation mIoU (segmentation), over the classes present or predicted."""
        return self.metrics.get("val_miou")

    @property
    def map50(self) -> float | None:
        """Validation mAP at IoU 0.5 (detection)."""
        return self.metrics.get("val_map50")

    @property
    def iou(self) -> np.ndarray | None:
        """Validation IoU per class in class order, NaN where a class's union is empty."""
        values = [v for k, v in self.metrics.items() if k.startswith("val_iou_")]
        if not values:
            return None
        return np.array([np.nan if v is None else v for v in values], dtype=np.float64)

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
        """One row of metrics.csv (SPEC §4 columns first, then the task's; the task's
        ``columns`` say which are written)."""
        return {"epoch": self.epoch, "train_loss": self.train_loss,
                "train_accuracy": self.train_accuracy, "val_loss": self.val_loss,
                "val_accuracy": self.val_accuracy, "seconds": round(self.seconds, 3),
                "lr": self.lr, **self.metrics}


@dataclass(frozen=True)
class FeatureMapEvent:
    """A block's output for one fixed probe image: [C,H,W] maps or an [F] vector."""

    global_step: int
    node: str
    maps: np.ndarray
    probe_index: int
    kernels: np.ndarray | None = None  # [out,in,kh,kw] when the block is a convolution


@dataclass(frozen=True)
class PredictionEvent:
    """Segmentation and detection: what the network makes of the current probe image
    now, sent at each probe (about twice a second in the application) whether or not
    feature maps are asked for, so the live view can draw the predicted mask or boxes
    over the image."""

    global_step: int
    probe_index: int
    class_map: np.ndarray | None = None    # segmentation: uint8 [H,W], argmax over the logits
    confidence: np.ndarray | None = None   # float32 [H,W], the largest softmax probability
    # detection: the boxes scoring at least 0.25 after NMS, best first: float32 [D,4]
    # (x1, y1, x2, y2 in input pixels), their scores [D] and class indexes int64 [D]
    boxes: np.ndarray | None = None
    scores: np.ndarray | None = None
    labels: np.ndarray | None = None


@dataclass(frozen=True)
class DoneEvent:
    stopped: bool                    # True when stop() ended the run early
    epochs_completed: int
    checkpoint: Path | None
    metrics: list[dict[str, Any]] = field(default_factory=list)

    def summary(self) -> str:
        """The last epoch's validation result in words, as the command line and the
        Training panel both say it: 'validation accuracy 99.0%', or for segmentation
        'validation mIoU 0.812, pixel accuracy 95.1%', for detection 'validation mAP@0.5
        0.853, mAP@0.5:0.95 0.541'; '' before any epoch ended."""
        last = self.metrics[-1] if self.metrics else {}
        if "val_map50" in last:
            m50, m = last.get("val_map50"), last.get("val_map")
            if m50 is None:
                return ""
            return f"validation mAP@0.5 {m50:.3f}" + (f", mAP@0.5:0.95 {m:.3f}"
                                                       if m is not None else "")
        acc, miou = last.get("val_accuracy"), last.get("val_miou")
        if miou is not None and acc is not None:
            return f"validation mIoU {miou:.3f}, pixel accuracy {100 * acc:.1f}%"
        return f"validation accuracy {100 * acc:.1f}%" if acc is not None else ""


@dataclass(frozen=True)
class FailedEvent:
    """The run could not go on. ``reason`` is meant for a person, with what to do."""

    kind: str                        # nan, oom, data, graph, device, config, io, error
    reason: str
    checkpoint: Path | None = None   # the last good checkpoint, when there is one
    suggestion: dict[str, Any] = field(default_factory=dict)
    details: str = ""                # a traceback, for unexpected errors only


Event = (ReadyEvent | StepEvent | EpochEvent | FeatureMapEvent | PredictionEvent | DoneEvent
         | FailedEvent)
