"""Box geometry shared by the detection head, its loss, NMS and the mAP (SPEC §7).

Every part of detection measures overlap the same way, so the formulas live once,
here: boxes are ``x1, y1, x2, y2`` in input pixels (after the image is resized to the
Input's H×W), float32. Plain torch with no compiled extension, because torchvision's
ops do not load against the torch this project pins.
"""

from __future__ import annotations

import torch
from torch import Tensor

from .plain import box_iou  # noqa: F401  (one definition, carried by exports too)


def box_area(boxes: Tensor) -> Tensor:
    """Area of ``[N, 4]`` xyxy boxes; degenerate (inverted) boxes count as 0, not negative,
    so a badly decoded box cannot make an IoU exceed 1."""
    wh = (boxes[..., 2:4] - boxes[..., 0:2]).clamp(min=0)
    return wh[..., 0] * wh[..., 1]


def wh_iou(wh1: Tensor, wh2: Tensor) -> Tensor:
    """IoU of boxes ``[N, 2]`` and ``[M, 2]`` (width, height) as if they shared a centre
    → ``[N, M]``.

    This is how a true box picks its anchor and how anchor k-means measures distance:
    only shape and size matter, position is the grid cell's business.
    """
    w1, h1 = wh1[:, None, 0].clamp(min=0), wh1[:, None, 1].clamp(min=0)
    w2, h2 = wh2[None, :, 0].clamp(min=0), wh2[None, :, 1].clamp(min=0)
    inter = torch.minimum(w1, w2) * torch.minimum(h1, h2)
    union = w1 * h1 + w2 * h2 - inter
    return torch.where(union > 0, inter / union.clamp(min=torch.finfo(inter.dtype).tiny),
                       torch.zeros_like(inter))


def cxcywh_to_xyxy(boxes: Tensor) -> Tensor:
    """``(cx, cy, w, h)`` → ``(x1, y1, x2, y2)``, any leading shape; the head predicts
    centres and sizes, everything downstream wants corners."""
    cx, cy, w, h = boxes.unbind(-1)
    return torch.stack((cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2), dim=-1)


def xyxy_to_cxcywh(boxes: Tensor) -> Tensor:
    """``(x1, y1, x2, y2)`` → ``(cx, cy, w, h)``, any leading shape; target encoding needs
    the centre (which cell) and the size (which anchor)."""
    x1, y1, x2, y2 = boxes.unbind(-1)
    return torch.stack(((x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1), dim=-1)


def clip_boxes(boxes: Tensor, h: float, w: float) -> Tensor:
    """Boxes clipped to the ``h × w`` image (a new tensor); a decoded box may reach past the
    border, and drawn or scored boxes should not."""
    out = boxes.clone()
    out[..., 0::2] = out[..., 0::2].clamp(0, w)
    out[..., 1::2] = out[..., 1::2].clamp(0, h)
    return out
