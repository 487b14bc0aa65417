"""The YOLO-style head of SPEC §7: what its channels mean, the training targets, the loss
and the decoding into boxes.

The network's output is ``[B, A·(5+K), S_h, S_w]``: for cell (i = row, j = column) and
anchor a, channels ``a·(5+K) + 0…4+K`` hold ``tx, ty, tw, th``, the objectness logit and
K class logits. The box centre is ``((j + sigmoid(tx))·W/S_w, (i + sigmoid(ty))·H/S_h)``
and its size ``(anchor_w·exp(tw), anchor_h·exp(th))``, in input pixels.

Everything here runs on whole batches with tensors of fixed shape (no boolean indexing,
no ``.item()``), so a training step on a GPU never waits for the host.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from . import plain
from .boxes import box_area, wh_iou, xyxy_to_cxcywh

# Loss weights (YOLOv3's balance, checked on shapes-det): the box terms count five
# times, objectness of an empty cell half, so the hundreds of empty cells of a grid
# do not drown the few that hold an object.
BOX_WEIGHT = 5.0
OBJECT_WEIGHT = 1.0
NO_OBJECT_WEIGHT = 0.5
CLASS_WEIGHT = 1.0
# An empty cell whose predicted box already overlaps a true box this much is not
# pushed towards "no object" (YOLOv3): it found the object, just not from its cell.
IGNORE_IOU = 0.5


def head_channels(num_anchors: int, num_classes: int) -> int:
    """The channels a head needs: A·(5+K)."""
    return num_anchors * (5 + num_classes)


def as_anchors(anchors: Sequence[Sequence[float]] | Tensor,
               device: torch.device | str | None = None) -> Tensor:
    """Anchors ``[[w, h], …]`` (input pixels) as a float32 ``[A, 2]`` tensor."""
    t = torch.as_tensor(anchors, dtype=torch.float32, device=device)
    if t.dim() != 2 or t.shape[1] != 2 or len(t) == 0:
        raise ValueError(f"anchors must be a list of [w, h] pairs, got shape {tuple(t.shape)}")
    return t


@dataclass(frozen=True)
class YoloHead:
    """The geometry of one head output: anchors A, classes K and the S_h×S_w grid."""

    num_anchors: int
    num_classes: int
    grid_hw: tuple[int, int]

    @classmethod
    def from_output(cls, shape: Sequence[int], num_anchors: int) -> YoloHead:
        """The geometry of an output of ``shape`` ([C, S_h, S_w] or [B, C, S_h, S_w]);
        ValueError when C is not A·(5+K) for some K ≥ 1."""
        c, sh, sw = (int(d) for d in shape[-3:])
        k, rest = divmod(c, num_anchors)
        if rest or k - 5 < 1:
            raise ValueError(f"{c} channels are not {num_anchors} anchors × (5 + classes)")
        return cls(num_anchors, k - 5, (sh, sw))


def _check_channels(c: int, num_anchors: int, num_classes: int) -> None:
    if c != head_channels(num_anchors, num_classes):
        raise ValueError(f"the head gives {c} channels but {num_anchors} anchors and "
                         f"{num_classes} classes need {head_channels(num_anchors, num_classes)}")


def split_output(out: Tensor, num_anchors: int, num_classes: int) -> Tensor:
    """``[B, A·(5+K), S_h, S_w]`` → ``[B, A, S_h, S_w, 5+K]`` (reshape: the output may be
    channels-last)."""
    b, c, sh, sw = out.shape
    _check_channels(c, num_anchors, num_classes)
    return out.reshape(b, num_anchors, 5 + num_classes, sh, sw).permute(0, 1, 3, 4, 2)


@dataclass
class Targets:
    """What each cell and anchor should predict, all ``[B, A, S_h, S_w, …]``.

    ``positive`` marks the (cell, anchor) each true box is assigned to; elsewhere the
    other fields are zero. ``txy`` are the targets of sigmoid(tx, ty) (the centre's
    place in its cell, 0…1), ``twh`` those of (tw, th) = log(w / anchor_w, h /
    anchor_h), ``label`` the class index, ``scale`` the box-loss weight 2 − w·h/(W·H)
    (small boxes count more, as in YOLOv3)."""

    positive: Tensor
    txy: Tensor
    twh: Tensor
    label: Tensor
    scale: Tensor


def encode_targets(y: Tensor, anchors: Tensor, grid_hw: tuple[int, int],
                   image_hw: tuple[int, int], num_classes: int) -> Targets:
    """Assign each true box of ``y`` ([B, M, 5] rows ``class, x1, y1, x2, y2``; class −1
    is padding) to the cell containing its centre and the anchor of the best
    :func:`wh_iou` with its size.

    When two boxes of an image want the same cell and anchor, the larger box wins
    (ties: the later row), and the other is not learned in that image: one (cell,
    anchor) predicts one box. Boxes whose class is outside 0…K−1 are padding."""
    b, m, _ = y.shape
    a = len(anchors)
    sh, sw = grid_hw
    h, w = image_hw
    device = y.device
    y = y.float()
    cls = y[..., 0]
    cxcywh = xyxy_to_cxcywh(y[..., 1:5])
    cx, cy = cxcywh[..., 0], cxcywh[..., 1]
    bw, bh = cxcywh[..., 2].clamp(min=1e-3), cxcywh[..., 3].clamp(min=1e-3)
    valid = (cls >= 0) & (cls < num_classes)
    stride_x, stride_y = w / sw, h / sh
    j = (cx / stride_x).floor().clamp(0, sw - 1).long()
    i = (cy / stride_y).floor().clamp(0, sh - 1).long()
    best = wh_iou(torch.stack((bw, bh), -1).reshape(-1, 2), anchors.to(device)).argmax(1)
    best = best.view(b, m)
    image = torch.arange(b, device=device)[:, None].expand(b, m)
    cells = b * a * sh * sw
    key = ((image * a + best) * sh + i) * sw + j
    # Unique priorities, larger area first wins (then the later row): the winner of a
    # key is the box whose priority is the largest among those sharing it.
    area = torch.where(valid, bw * bh, -1.0).flatten()
    order = torch.argsort(area, stable=True)  # rows in (image, row) order: later wins ties
    priority = torch.empty_like(order)
    priority[order] = torch.arange(b * m, device=device)
    key = torch.where(valid.flatten(), key.flatten(), cells)  # padding: a spare slot
    top = torch.full((cells + 1,), -1, dtype=torch.long, device=device)
    top.scatter_reduce_(0, key, priority, reduce="amax")
    winner = valid.flatten() & (top[key] == priority)
    slot = torch.where(winner, key, cells)  # losers and padding all go to the spare slot

    def scatter(values: Tensor, fill: float = 0.0) -> Tensor:
        flat = values.reshape(b * m, -1)
        grid = torch.full((cells + 1, flat.shape[1]), fill, dtype=flat.dtype, device=device)
        grid[slot] = flat  # duplicates only in the spare slot, dropped below
        return grid[:cells].view(b, a, sh, sw, -1)

    anchor_wh = anchors.to(device)[best]                                  # [B, M, 2]
    txy = torch.stack((cx / stride_x - j, cy / stride_y - i), -1)
    twh = torch.log(torch.stack((bw, bh), -1) / anchor_wh)
    scale = (2.0 - bw * bh / (w * h))[..., None]
    one = torch.ones(b, m, 1, device=device)
    positive = scatter(one)[..., 0] > 0
    label = scatter(cls.clamp(min=0)[..., None])[..., 0].long()
    return Targets(positive, scatter(txy), scatter(twh), label, scatter(scale)[..., 0])


def decode(out: Tensor, anchors: Tensor, image_hw: tuple[int, int],
           num_classes: int) -> tuple[Tensor, Tensor, Tensor]:
    """The network's output as boxes: ``(boxes [B, N, 4] xyxy in input pixels,
    objectness [B, N], class probabilities [B, N, K])`` with N = A·S_h·S_w in the
    order (anchor, row, column). Class probabilities are a softmax: one class a box.

    :func:`engine.detection.plain.decode` (the exports' decoding too), once the
    channels are checked against ``num_classes``."""
    _check_channels(out.shape[1], len(anchors), num_classes)
    return plain.decode(out, anchors.to(out.device), image_hw)


def batched_box_iou(a: Tensor, b: Tensor) -> Tensor:
    """IoU of ``[B, N, 4]`` with ``[B, M, 4]`` xyxy boxes, image by image → [B, N, M]
    (engine.detection.boxes.box_iou's formula over a batch, for the loss's ignore
    mask)."""
    lt = torch.maximum(a[:, :, None, :2], b[:, None, :, :2])
    rb = torch.minimum(a[:, :, None, 2:], b[:, None, :, 2:])
    wh = (rb - lt).clamp(min=0)
    inter = wh[..., 0] * wh[..., 1]
    union = box_area(a)[:, :, None] + box_area(b)[:, None, :] - inter
    return inter / union.clamp(min=1e-9)


class YoloLoss(nn.Module):
    """The detection loss, per image (then the mean over images, or the sum with
    ``reduction = "sum"`` as a distributed trainer asks):

    - objectness: binary cross-entropy on every cell and anchor, 1 where a box is
      assigned and 0 elsewhere, except empty cells whose decoded box already has IoU >
      IGNORE_IOU with a true box (left out); empty cells weigh NO_OBJECT_WEIGHT;
    - box (assigned cells only, weighted 2 − w·h/(W·H) and BOX_WEIGHT): binary
      cross-entropy of sigmoid(tx, ty) against the centre's place in the cell, squared
      error of (tw, th) against log(size / anchor);
    - class (assigned cells only, CLASS_WEIGHT): cross-entropy over the K classes.

    Sums over the grid, not means: an image with more objects teaches more, and an
    image with none contributes its objectness term only (never a NaN). Computed in
    float32 even under autocast.
    """

    def __init__(self, anchors: Sequence[Sequence[float]] | Tensor, image_hw: tuple[int, int],
                 num_classes: int, reduction: str = "mean") -> None:
        super().__init__()
        self.register_buffer("anchors", as_anchors(anchors), persistent=False)
        self.image_hw = (int(image_hw[0]), int(image_hw[1]))
        self.num_classes = int(num_classes)
        self.reduction = reduction
        # The last batch's labels and their encoding: the trainer's running "found" figure
        # (positives_found) reads the same assignment instead of encoding it again, which
        # on a GPU is dozens of small kernels a step.
        self.last_targets: tuple[Tensor, Targets] | None = None

    def forward(self, out: Tensor, y: Tensor) -> Tensor:
        with torch.autocast(out.device.type, enabled=False):
            per_image = self.per_image(out.float(), y)
        return per_image.sum() if self.reduction == "sum" else per_image.mean()

    def per_image(self, out: Tensor, y: Tensor) -> Tensor:
        """The loss of each image, [B]."""
        anchors = self.anchors.to(out.device)
        k, a = self.num_classes, len(anchors)
        p = split_output(out, a, k)
        t = encode_targets(y, anchors, p.shape[2:4], self.image_hw, k)
        self.last_targets = (y, t)
        pos = t.positive.float()
        boxes, _, _ = decode(out.detach(), anchors, self.image_hw, k)
        truth = y[..., 1:5].float()
        real = (y[..., 0] >= 0)[:, None, :]
        overlap = torch.where(real, batched_box_iou(boxes, truth), 0.0).amax(2) \
            if y.shape[1] else torch.zeros(boxes.shape[:2], device=out.device)
        ignored = (overlap > IGNORE_IOU).view(pos.shape) & ~t.positive
        obj = F.binary_cross_entropy_with_logits(p[..., 4], pos, reduction="none")
        obj_weight = torch.where(t.positive, OBJECT_WEIGHT,
                                 torch.where(ignored, 0.0, NO_OBJECT_WEIGHT))
        xy = F.binary_cross_entropy_with_logits(p[..., 0:2], t.txy, reduction="none").sum(-1)
        wh = (p[..., 2:4] - t.twh).square().sum(-1)
        box = (xy + wh) * t.scale * pos
        cls = F.cross_entropy(p[..., 5:].reshape(-1, k), t.label.flatten(),
                              reduction="none").view(pos.shape) * pos
        total = obj * obj_weight + BOX_WEIGHT * box + CLASS_WEIGHT * cls
        return total.flatten(1).sum(1)


def positives_found(out: Tensor, y: Tensor, anchors: Tensor, image_hw: tuple[int, int],
                    num_classes: int, targets: Targets | None = None) -> Tensor:
    """[found, assigned] for a running training figure, on the device: the assigned
    (cell, anchor) pairs whose objectness is above one half and whose most likely
    class is the true one, of all assigned pairs. ``targets``: ``y``'s encoding when
    the loss has just made it."""
    with torch.no_grad():
        out = out.detach().float()
        p = split_output(out, len(anchors), num_classes)
        t = targets if targets is not None else encode_targets(
            y, anchors.to(out.device), p.shape[2:4], image_hw, num_classes)
        right = (p[..., 4] > 0) & (p[..., 5:].argmax(-1) == t.label) & t.positive
        return torch.stack((right.sum(), t.positive.sum()))


def detect(out: Tensor, anchors: Sequence[Sequence[float]] | Tensor,
           image_hw: tuple[int, int], num_classes: int, score_threshold: float = 0.25,
           iou_threshold: float = 0.5, max_detections: int = 100,
           candidates: int = 1000) -> list[tuple[Tensor, Tensor, Tensor]]:
    """Each image's detections ``(boxes [D, 4] xyxy in input pixels clipped to the image,
    scores [D], labels [D])``, best first.

    A score is objectness × class probability; every (box, class) pair above
    ``score_threshold`` is a candidate (a box may stand for two classes, as COCO
    evaluation expects), at most ``candidates`` of them by score; then class-wise
    non-maximum suppression at ``iou_threshold`` and the ``max_detections`` best.
    The rules are :func:`engine.detection.plain.detect`'s, which exports carry."""
    anchors = as_anchors(anchors, out.device)
    _check_channels(out.shape[1], len(anchors), num_classes)
    return plain.detect(out, score_threshold, iou_threshold, max_detections, anchors,
                        image_hw, candidates)
