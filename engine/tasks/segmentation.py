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
from ..train_events import PredictionEvent
from .base import Accumulator, Evaluation, Task

WORST_SHOWN = 16  # validation images with the lowest IoU reported after each epoch


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


def image_iou(per_image: torch.Tensor) -> torch.Tensor:
    """Each image's own mIoU from its [true, predicted] confusion matrix ([N, K, K]):
    the mean IoU over the classes in its true or predicted mask (ignored pixels are not
    in the matrices), NaN for an image with no labelled pixel."""
    counts = per_image.float()
    tp = counts.diagonal(dim1=1, dim2=2)
    union = counts.sum(1) + counts.sum(2) - tp
    present = union > 0
    iou = torch.where(present, tp / union.clamp(min=1), 0.0)
    classes = present.sum(1)
    return torch.where(classes > 0, iou.sum(1) / classes.clamp(min=1), float("nan"))


class PixelAccumulator(Accumulator):
    """The validation loss over labelled pixels, the pixel confusion matrix, and the
    WORST_SHOWN images with the lowest IoU of their own (EpochEvent's ``worst_*``).

    The confusion matrix is the sum of per-image ones from one bincount per batch over
    (image, true, predicted), so the per-image IoU costs no second pass over the
    pixels; only the running worst images' predicted masks are kept, on the device,
    with no per-batch transfer."""

    def __init__(self, num_classes: int, device: torch.device, classes: Sequence[str]):
        super().__init__(num_classes, device, ignore=IGNORE)
        self.classes = list(classes)
        self._n = 0
        self._worst_rank = torch.empty(0, device=device)   # IoU, +inf for no labelled pixel
        self._worst_index = torch.empty(0, dtype=torch.long, device=device)
        self._worst_masks: torch.Tensor | None = None        # uint8 [≤WORST_SHOWN, H, W]
        self._tracking = True

    def predict(self, out: torch.Tensor) -> torch.Tensor:
        return pixel_classes(out)

    def count(self, y: torch.Tensor, predicted: torch.Tensor) -> None:
        n, k = len(y), self.k
        image = torch.arange(n, device=y.device).view(n, 1, 1)
        cells = torch.where(y == IGNORE, n * k * k, (image * k + y) * k + predicted)
        per_image = torch.bincount(cells.flatten(), minlength=n * k * k + 1)[
            :n * k * k].view(n, k, k)
        self.counts += per_image.sum(0).flatten()
        if self._tracking:
            self._keep_worst(image_iou(per_image), predicted)

    def _keep_worst(self, iou: torch.Tensor, predicted: torch.Tensor) -> None:
        """Merge this batch's worst images into the running WORST_SHOWN."""
        rank = torch.nan_to_num(iou, nan=float("inf"))
        batch = rank.topk(min(WORST_SHOWN, len(rank)), largest=False).indices
        ranks = torch.cat((self._worst_rank, rank[batch]))
        indexes = torch.cat((self._worst_index, batch + self._n))
        masks = predicted[batch].to(torch.uint8)
        if self._worst_masks is not None:
            if self._worst_masks.shape[1:] != masks.shape[1:]:
                # batches of another size (not the trainer's, whose validation images
                # share the Input's): no gallery rather than masks that cannot stack
                self._worst_masks, self._tracking = None, False
                return
            masks = torch.cat((self._worst_masks, masks))
        keep = ranks.topk(min(WORST_SHOWN, len(ranks)), largest=False).indices
        self._worst_rank, self._worst_index = ranks[keep], indexes[keep]
        self._worst_masks = masks[keep]
        self._n += len(iou)

    def finish(self, source: ImageSet | None = None) -> Evaluation:
        """With ``source`` (the ImageSet of the unshuffled batches), the evaluation's
        ``extras`` are EpochEvent's ``worst_*`` fields, lowest IoU first."""
        evaluation = super().finish(source)
        accuracy, iou, miou = segmentation_metrics(evaluation.confusion)
        metrics: dict[str, float | None] = {"val_pixel_accuracy": _number(accuracy),
                                            "val_miou": _number(miou)}
        for name, value in zip(self.classes, iou, strict=True):
            metrics[f"val_iou_{name}"] = _number(value)
        evaluation.metrics = metrics
        if source is not None and self._worst_masks is not None:
            order = self._worst_rank.argsort(stable=True)
            order = order[torch.isfinite(self._worst_rank[order])].cpu()
            if len(order):
                index = self._worst_index.cpu()[order]
                evaluation.extras = dict(
                    worst_images=source.x[index].numpy().copy(),
                    worst_true=source.y[index].numpy().astype(np.uint8),
                    worst_predicted=self._worst_masks.cpu()[order].numpy(),
                    worst_iou=self._worst_rank.cpu()[order].numpy().astype(np.float64))
        return evaluation


class Segmentation(Task):
    """Logits [N, K, H, W] against masks [N, H, W]: per-pixel cross-entropy (255
    ignored), pixel accuracy, per-class IoU and mIoU."""

    name: ClassVar[str] = "segmentation"
    target: ClassVar[str] = "a mask of class indexes per image, 255 where ignored"
    ignore: ClassVar[int | None] = IGNORE
    live_prediction: ClassVar[bool] = True

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

    def probe_targets(self, y: torch.Tensor) -> np.ndarray | None:
        return y.to(torch.uint8).cpu().numpy().copy()

    def prediction(self, out: torch.Tensor, global_step: int,
                   probe_index: int) -> PredictionEvent | None:
        """The probe image's class map as the validation metrics count it (argmax), and
        how sure the network is of each pixel (the largest softmax probability)."""
        logits = out[:1].float()
        class_map = pixel_classes(logits)[0].to(torch.uint8).cpu().numpy()
        confidence = logits.softmax(1).amax(1)[0].cpu().numpy()
        return PredictionEvent(global_step, probe_index, class_map, confidence)

    def decode(self, out: torch.Tensor, classes: Sequence[str], top: int = 5) -> list[dict]:
        """Each image's class map (uint8 [H, W], the argmax over the logits [N, K, H, W],
        as the validation metrics count it) and the indexes of the classes in it."""
        maps = pixel_classes(out.float()).to(torch.uint8).cpu().numpy()
        return [{"class_map": m, "present": [int(c) for c in np.unique(m)]} for m in maps]


def _number(value: float) -> float | None:
    """None (an empty CSV cell) for NaN: no value, rather than a number that is not one."""
    return None if np.isnan(value) else float(value)
