"""Non-maximum suppression in plain torch (SPEC §7): one box per object out of the many
overlapping boxes a detection head proposes.

Same semantics as ``torchvision.ops.nms`` (whose compiled ops do not load against the
torch this project pins): boxes taken greedily in descending score, each kept box
discards every later box whose IoU with it is *greater than* the threshold (an IoU
exactly at the threshold survives); equal scores keep their input order (stable sort),
so results are reproducible. The returned indices are sorted by decreasing score.

The greedy pass itself is :func:`engine.detection.plain.nms`, the one an exported
detector carries too; here the inputs are checked first, with messages that say what
was expected.
"""

from __future__ import annotations

from torch import Tensor

from . import plain


def _check(boxes: Tensor, scores: Tensor) -> None:
    if boxes.dim() != 2 or boxes.shape[-1] != 4:
        raise ValueError(f"nms: boxes must be [N, 4] (x1, y1, x2, y2), got {list(boxes.shape)}")
    if scores.dim() != 1 or scores.shape[0] != boxes.shape[0]:
        raise ValueError(
            f"nms: scores must be [N] with N = {boxes.shape[0]} (one per box), "
            f"got {list(scores.shape)}"
        )


def nms(boxes: Tensor, scores: Tensor, iou_threshold: float) -> Tensor:
    """Indices (``int64``, by decreasing score) of the boxes ``[N, 4]`` that survive
    greedy NMS: a box is discarded when its IoU with a higher-scoring kept box is
    greater than ``iou_threshold``."""
    _check(boxes, scores)
    return plain.nms(boxes, scores, iou_threshold)


def batched_nms(boxes: Tensor, scores: Tensor, classes: Tensor, iou_threshold: float) -> Tensor:
    """Class-wise NMS: like :func:`nms`, but boxes of different ``classes`` ``[N]`` never
    suppress each other (a cat box must not hide the dog it overlaps).

    Masks the suppression matrix by class instead of torchvision's coordinate-offset
    trick, so large coordinates cannot shift an IoU across the threshold through
    float rounding.
    """
    _check(boxes, scores)
    if classes.dim() != 1 or classes.shape[0] != boxes.shape[0]:
        raise ValueError(
            f"batched_nms: classes must be [N] with N = {boxes.shape[0]}, "
            f"got {list(classes.shape)}"
        )
    return plain.nms(boxes, scores, iou_threshold, classes)
