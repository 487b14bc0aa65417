"""Semantic segmentation: one class per pixel (SPEC §7).

The network gives logits [N, K, H, W] at the Input's size; a target is a mask [N, H, W]
of class indexes in which IGNORE (255) marks pixels that count nowhere (object borders
in VOC, the padding a random crop shifts in). Metrics come from one confusion matrix
over every labelled pixel of the validation set, never from a mean of per-image or
per-batch values, which would weigh a small image's few pixels like a large one's.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

import numpy as np
import torch
from torch import nn

from ..data import ImageSet
from ..data.batches import IGNORE
from ..train_config import TrainConfig
from .base import Accumulator, Evaluation, Task


def iou_per_class(confusion: np.ndarray) -> np.ndarray:
    """IoU of each class from a [true, predicted] pixel confusion matrix: TP / (TP + FP
    + FN); NaN for a class whose union is empty (neither present nor predicted)."""
    confusion = np.asarray(confusion, dtype=np.float64)
    tp = np.diag(confusion)
    union = confusion.sum(axis=0) + confusion.sum(axis=1) - tp
    return np.divide(tp, union, out=np.full(len(tp), np.nan), where=union > 0)


def segmentation_metrics(confusion: np.ndarray) -> tuple[float, np.ndarray, float]:
    """(pixel accuracy, per-class IoU, mIoU). mIoU is the mean over the classes whose
    union is not empty (SPEC §7): a class absent from the set and never predicted says
    nothing about the network, so it does not count as 0 or 1. NaN when nothing was
    counted at all."""
    confusion = np.asarray(confusion, dtype=np.float64)
    total = confusion.sum()
    accuracy = float(np.trace(confusion) / total) if total else float("nan")
    iou = iou_per_class(confusion)
    seen = ~np.isnan(iou)
    miou = float(iou[seen].mean()) if seen.any() else float("nan")
    return accuracy, iou, miou


def pixel_classes(out: torch.Tensor) -> torch.Tensor:
    """The predicted class of each pixel, ``out.argmax(1)`` for logits [N, K, H, W].

    On a CPU, argmax over the (strided) class axis is about 7× slower than K passes of
    elementwise comparisons over contiguous maps, which give the same answer (the first
    class wins a tie, as in argmax).
    """
    if out.device.type != "cpu":
        return out.argmax(1)
    best = out[:, 0]
    index = torch.zeros(best.shape, dtype=torch.long, device=out.device)
    for k in range(1, out.shape[1]):
        better = out[:, k] > best
        best = torch.maximum(best, out[:, k])
        index = torch.where(better, k, index)
    return index


class PixelAccumulator(Accumulator):
    """The validation loss over labelled pixels and the pixel confusion matrix."""

    def __init__(self, num_classes: int, device: torch.device, classes: Sequence[str]):
        super().__init__(num_classes, device, ignore=IGNORE)
        self.classes = list(classes)

    def predict(self, out: torch.Tensor) -> torch.Tensor:
        return pixel_classes(out)

    def finish(self, source: ImageSet | None = None) -> Evaluation:
        evaluation = super().finish(source)
        accuracy, iou, miou = segmentation_metrics(evaluation.confusion)
        metrics: dict[str, float | None] = {"val_pixel_accuracy": _number(accuracy),
                                            "val_miou": _number(miou)}
        for name, value in zip(self.classes, iou, strict=True):
            metrics[f"val_iou_{name}"] = _number(value)
        evaluation.metrics = metrics
        return evaluation


class Segmentation(Task):
    """Logits [N, K, H, W] against masks [N, H, W]: per-pixel cross-entropy (255
    ignored), pixel accuracy, per-class IoU and mIoU."""

    name: ClassVar[str] = "segmentation"
    target: ClassVar[str] = "a mask of class indexes per image, 255 where ignored"
    ignore: ClassVar[int | None] = IGNORE

    def __init__(self, classes: Sequence[str] = ()) -> None:
        self.classes = list(classes)

    def criterion(self, config: TrainConfig) -> nn.Module:
        return nn.CrossEntropyLoss(ignore_index=IGNORE, label_smoothing=config.label_smoothing)

    def hits(self, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        # A pixel is right when its true class's score is the largest. Not argmax over
        # the class axis: on a CPU that costs 40× a max and was 7 % of a U-Net's step.
        labelled = y != IGNORE
        target = torch.where(labelled, y, 0)[:, None]
        right = (out.gather(1, target)[:, 0] >= out.amax(1)) & labelled
        return torch.stack((right.sum(), labelled.sum()))

    def accumulator(self, num_classes: int, device: torch.device) -> Accumulator:
        return PixelAccumulator(num_classes, device, self.classes)

    def columns(self, classes: Sequence[str]) -> list[str]:
        return ["epoch", "train_loss", "train_pixel_accuracy", "val_loss",
                "val_pixel_accuracy", "val_miou", *(f"val_iou_{c}" for c in classes),
                "seconds", "lr"]

    def epoch_metrics(self, train_accuracy: float,
                      evaluation: Evaluation | None) -> dict[str, float | None]:
        metrics: dict[str, float | None] = {"train_pixel_accuracy": train_accuracy}
        if evaluation is not None:
            metrics.update(evaluation.metrics)
        return metrics

    def target_shape(self, data: ImageSet) -> tuple[int, ...]:
        return tuple(data.image_shape[1:])

    def decode(self, out: torch.Tensor, classes: Sequence[str], top: int = 5) -> list[dict]:
        """Each image's class map (uint8 [H, W], the argmax over the logits [N, K, H, W],
        as the validation metrics count it) and the indexes of the classes in it."""
        maps = pixel_classes(out.float()).to(torch.uint8).cpu().numpy()
        return [{"class_map": m, "present": [int(c) for c in np.unique(m)]} for m in maps]


def _number(value: float) -> float | None:
    """None (an empty CSV cell) for NaN: no value, rather than a number that is not one."""
    return None if np.isnan(value) else float(value)
