"""Object detection: boxes and their classes from a YOLO-style grid (SPEC §7).

The network gives ``[B, A·(5+K), S_h, S_w]`` (engine.detection.yolo says what each
channel means); a target is an image's box rows ``[M, 5]`` ``(class, x1, y1, x2, y2)``
in input pixels, class −1 for padding. The loss is :class:`YoloLoss`; the validation
metrics are COCO's mAP at IoU 0.5 and over 0.50:0.95, from the detections of every
validation image at once (engine.detection.metrics), never a mean of per-batch values.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

import numpy as np
import torch
from torch import nn

from ..blocks.io import DEFAULT_ANCHORS
from ..data import ImageSet
from ..detection.metrics import DetectionMeter
from ..detection.yolo import YoloLoss, as_anchors, detect, positives_found
from ..train_config import TrainConfig
from ..train_events import PredictionEvent
from .base import Accumulator, Evaluation, Task

WORST_SHOWN = 16         # validation images with the most missed + false boxes, per epoch
SHOWN_SCORE = 0.25       # detections shown (live view, gallery, predict's default)
EVAL_SCORE = 0.01        # detections the mAP counts: nearly all, as COCO evaluation does
NMS_IOU = 0.5


class DetectionAccumulator(Accumulator):
    """The validation loss (per image) and every image's detections and true boxes, for
    one COCO mAP over the whole set; ``finish`` also picks the gallery's worst images.

    Detections go to the host image by image (NMS is per image anyway): a validation
    pass is a few hundred milliseconds of bookkeeping on top of the forward passes."""

    def __init__(self, num_classes: int, device: torch.device, task: Detection):
        super().__init__(num_classes, device)
        self.task = task
        self.loss_fn = task.loss().to(device)
        self.images = 0
        # per image: (boxes [D,4], scores [D], labels [D], true rows [G,5]) as numpy
        self.records: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []

    def add(self, out: torch.Tensor, y: torch.Tensor) -> None:
        out = out.float()
        self.loss_sum += self.loss_fn.per_image(out, y).sum()
        self.images += len(y)
        found = detect(out, self.task.anchors, self.task.image_hw, self.k,
                       score_threshold=EVAL_SCORE, iou_threshold=NMS_IOU)
        truth = y.float().cpu().numpy()
        for (boxes, scores, labels), rows in zip(found, truth, strict=True):
            self.records.append((boxes.cpu().numpy(), scores.cpu().numpy(),
                                 labels.cpu().numpy(), rows[rows[:, 0] >= 0]))

    def reduce(self) -> None:
        """Every process's images, in rank order: the mAP is of the whole set."""
        import torch.distributed as dist

        super().reduce()
        if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
            shares: list[list | None] = [None] * dist.get_world_size()
            dist.all_gather_object(shares, self.records)
            self.records = [r for share in shares for r in (share or [])]
            self.images = len(self.records)

    def finish(self, source: ImageSet | None = None) -> Evaluation:
        """mAP@0.5 and mAP@0.5:0.95 (``accuracy`` is the mAP@0.5, the task's headline
        figure); with ``source``, ``extras`` are EpochEvent's detection gallery fields."""
        meter = DetectionMeter(self.k)
        for boxes, scores, labels, rows in self.records:
            meter.add(boxes, scores, labels, rows[:, 1:5], rows[:, 0].astype(np.int64))
        result = meter.compute()
        map50, map_all = _number(result["map50"]), _number(result["map"])
        evaluation = Evaluation(self.loss_sum.item() / max(self.images, 1),
                                map50 if map50 is not None else 0.0, None,
                                {"val_map50": map50, "val_map": map_all})
        if source is not None and len(self.records) == len(source):
            evaluation.extras = self._worst(meter, source)
        return evaluation

    def _worst(self, meter: DetectionMeter, source: ImageSet) -> dict:
        """The WORST_SHOWN images with the most missed + false boxes (at IoU 0.5, scores
        ≥ SHOWN_SCORE), most first; none when every image is right."""
        errors = np.array(meter.image_errors(SHOWN_SCORE), dtype=np.int64).reshape(-1, 2)
        total = errors.sum(1)
        order = np.argsort(-total, kind="stable")[:WORST_SHOWN]
        order = order[total[order] > 0]
        if not len(order):
            return {}
        detections, truths = [], []
        for i in order:
            boxes, scores, labels, rows = self.records[i]
            shown = scores >= SHOWN_SCORE
            detections.append(np.concatenate(
                (labels[shown, None].astype(np.float32), scores[shown, None],
                 boxes[shown]), axis=1).astype(np.float32))
            truths.append(rows.astype(np.float32))
        return dict(worst_images=source.x[torch.from_numpy(order)].numpy().copy(),
                    worst_true_boxes=truths, worst_detections=detections,
                    worst_errors=errors[order])


class Detection(Task):
    """A grid [A·(5+K), S, S] against box rows [M, 5]: the YOLO loss, COCO mAP."""

    name: ClassVar[str] = "detection"
    target: ClassVar[str] = ("box rows [M, 5] per image: class (−1 for padding), x1, y1, "
                             "x2, y2 in input pixels")
    live_prediction: ClassVar[bool] = True

    def __init__(self, classes: Sequence[str] = (),
                 anchors: Sequence[Sequence[float]] = DEFAULT_ANCHORS,
                 image_hw: tuple[int, int] = (64, 64)) -> None:
        self.classes = list(classes)
        self.anchors = as_anchors(anchors)
        self.image_hw = (int(image_hw[0]), int(image_hw[1]))
        self._criterion: YoloLoss | None = None  # the trainer's, once asked for

    def loss(self) -> YoloLoss:
        return YoloLoss(self.anchors, self.image_hw, len(self.classes))

    def criterion(self, config: TrainConfig) -> nn.Module:
        self._criterion = self.loss()
        return self._criterion

    def hits(self, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """[found, assigned]: the true boxes whose (cell, anchor) says "object" with the
        right class, of all assigned ones (a cheap running figure; the mAP is per epoch).
        The step's loss has just assigned ``y``: its encoding is reused."""
        last = self._criterion.last_targets if self._criterion is not None else None
        targets = last[1] if last is not None and last[0] is y else None
        return positives_found(out, y, self.anchors, self.image_hw, len(self.classes),
                               targets)

    def accumulator(self, num_classes: int, device: torch.device) -> Accumulator:
        return DetectionAccumulator(num_classes, device, self)

    def columns(self, classes: Sequence[str]) -> list[str]:
        return ["epoch", "train_loss", "train_found", "val_loss", "val_map50", "val_map",
                "seconds", "lr"]

    def epoch_metrics(self, train_accuracy: float,
                      evaluation: Evaluation | None) -> dict[str, float | None]:
        metrics: dict[str, float | None] = {"train_found": train_accuracy}
        if evaluation is not None:
            metrics.update(evaluation.metrics)
        return metrics

    def target_shape(self, data: ImageSet) -> tuple[int, ...]:
        return (int(data.y.shape[1]) if data.y.dim() == 3 else 1, 5)

    def _target_problem(self, data: ImageSet, k: int) -> str:
        y = data.y
        if y.dim() != 3 or y.shape[2] != 5 or len(y) != len(data):
            return (f"are {_shape(y.shape)} but a detection target is {self.target} "
                    f"([{len(data)}, M, 5])")
        if not y.is_floating_point():
            return f"are {y.dtype}, not box coordinates (float32)"
        cls = y[..., 0]
        if not torch.isfinite(y).all():
            return "hold a box coordinate that is not a finite number"
        bad = cls[((cls != -1) & ((cls < 0) | (cls >= k))) | (cls != cls.round())]
        if bad.numel():
            return (f"hold the class {float(bad[0]):g} but there are {k} classes (0…{k - 1}, "
                    f"or −1 for a padding row)")
        return ""

    def probe_targets(self, y: torch.Tensor) -> np.ndarray | None:
        """The probe images' box rows [N, M, 5] (class −1 rows are padding)."""
        return y.float().cpu().numpy().copy()

    def prediction(self, out: torch.Tensor, global_step: int,
                   probe_index: int) -> PredictionEvent | None:
        """The probe image's detections scoring at least SHOWN_SCORE."""
        (boxes, scores, labels), = detect(out[:1].float(), self.anchors, self.image_hw,
                                          len(self.classes), score_threshold=SHOWN_SCORE,
                                          iou_threshold=NMS_IOU)
        return PredictionEvent(global_step, probe_index, boxes=boxes.cpu().numpy(),
                               scores=scores.cpu().numpy(),
                               labels=labels.cpu().numpy().astype(np.int64))

    def decode(self, out: torch.Tensor, classes: Sequence[str], top: int = 5,
               score_threshold: float = EVAL_SCORE) -> list[dict]:
        """Each image's detections in input pixels, best first: ``{"detections":
        [{"class", "index", "score", "box": [x1, y1, x2, y2]}, ...]}``; nearly all of
        them (scores ≥ 0.01), engine.predict keeps those above the user's threshold."""
        found = detect(out.float(), self.anchors, self.image_hw, len(self.classes) or
                       _classes_in(out, len(self.anchors)),
                       score_threshold=score_threshold, iou_threshold=NMS_IOU)
        return [{"detections": [
            {"class": str(classes[int(c)]) if int(c) < len(classes) else str(int(c)),
             "index": int(c), "score": float(s), "box": [float(v) for v in b]}
            for b, s, c in zip(boxes.tolist(), scores.tolist(), labels.tolist(),
                               strict=True)]} for boxes, scores, labels in found]


def _classes_in(out: torch.Tensor, anchors: int) -> int:
    return out.shape[1] // anchors - 5


def _number(value: float) -> float | None:
    return None if value is None or np.isnan(value) else float(value)


def _shape(shape: Sequence[int]) -> str:
    return "[" + ", ".join(str(int(d)) for d in shape) + "]"
