"""Non-maximum suppression in plain torch (SPEC §7): one box per object out of the many
overlapping boxes a detection head proposes.

Same semantics as ``torchvision.ops.nms`` (whose compiled ops do not load against the
torch this project pins): boxes taken greedily in descending score, each kept box
discards every later box whose IoU with it is *greater than* the threshold (an IoU
exactly at the threshold survives); equal scores keep their input order (stable sort),
so results are reproducible. The returned indices are sorted by decreasing score.

Why a suppression matrix: the IoU of every pair is computed once, vectorised, and the
greedy pass then only reads booleans, which is fast for the few thousand boxes a head
produces. Rows are computed in blocks so that memory stays bounded for larger inputs.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from .boxes import box_iou

#: Rows of the IoU matrix computed at a time (bounds the float memory to
#: ``_BLOCK × N × 4`` bytes; the boolean matrix is ``N × N`` bytes).
_BLOCK = 1024


def _check(boxes: Tensor, scores: Tensor) -> None:
    if boxes.dim() != 2 or boxes.shape[-1] != 4:
        raise ValueError(f"nms: boxes must be [N, 4] (x1, y1, x2, y2), got {list(boxes.shape)}")
    if scores.dim() != 1 or scores.shape[0] != boxes.shape[0]:
        raise ValueError(
            f"nms: scores must be [N] with N = {boxes.shape[0]} (one per box), "
            f"got {list(scores.shape)}"
        )


def _greedy(boxes: Tensor, scores: Tensor, iou_threshold: float,
            classes: Tensor | None) -> Tensor:
    """Greedy NMS; with ``classes`` boxes of different classes never suppress each other."""
    n = boxes.shape[0]
    if n == 0:
        return torch.zeros(0, dtype=torch.long, device=boxes.device)
    order = torch.sort(scores, descending=True, stable=True).indices
    b = boxes[order].float()
    c = classes[order] if classes is not None else None
    sup = np.empty((n, n), dtype=bool)
    for start in range(0, n, _BLOCK):
        stop = min(start + _BLOCK, n)
        rows = box_iou(b[start:stop], b) > iou_threshold
        if c is not None:
            rows &= c[start:stop, None] == c[None, :]
        sup[start:stop] = rows.cpu().numpy()
    removed = np.zeros(n, dtype=bool)
    kept: list[int] = []
    for i in range(n):
        if removed[i]:
            continue
        kept.append(i)
        removed |= sup[i]
    return order[torch.as_tensor(kept, dtype=torch.long, device=order.device)]


def nms(boxes: Tensor, scores: Tensor, iou_threshold: float) -> Tensor:
    """Indices (``int64``, by decreasing score) of the boxes ``[N, 4]`` that survive
    greedy NMS: a box is discarded when its IoU with a higher-scoring kept box is
    greater than ``iou_threshold``."""
    _check(boxes, scores)
    return _greedy(boxes, scores, iou_threshold, None)


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
    return _greedy(boxes, scores, iou_threshold, classes)
