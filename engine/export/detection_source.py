"""What a detector's exports carry besides the network (SPEC §7): the decoding of the
YOLO-style head and class-wise non-maximum suppression, as plain torch.

A detector's network ends at the raw head ``[B, A·(5+K), S_h, S_w]``; turning that into
boxes needs the anchors, the input size and the decoding rules. The ``.py`` export
writes the functions below into the file (their own source, by :func:`inspect.getsource`)
after module constants ``ANCHORS``, ``IMAGE_SIZE`` and ``CLASSES``, so the file runs
with torch alone. They are written once, here, and only here, with torch as their one
dependency; tests check them against engine.detection.yolo.detect and
engine.detection.nms.batched_nms, which are the definitions (the engine's versions use
numpy and helper modules, which the exported file cannot import). The ONNX export
describes the same rules in words, :func:`decode_description`, for its metadata.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Sequence

import torch

# Stand-ins for the constants an exported file defines (its own values), so that the
# functions below also run here, in tests.
ANCHORS: list[list[float]] = [[8.0, 8.0], [16.0, 16.0], [32.0, 32.0]]
IMAGE_SIZE: tuple[int, int] = (64, 64)
CLASSES: list[str] | None = None
# Defaults of detect(), the same as engine.detection.yolo.detect's (a test checks).
SCORE_THRESHOLD = 0.25
IOU_THRESHOLD = 0.5
MAX_DETECTIONS = 100
CANDIDATES = 1000


def decode(output: torch.Tensor, anchors: list[list[float]] = ANCHORS,
           image_size: tuple[int, int] = IMAGE_SIZE
           ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The network's output [B, A*(5+K), S_h, S_w] as boxes: (boxes [B, N, 4] as
    x1, y1, x2, y2 in input pixels, objectness [B, N], class probabilities [B, N, K]),
    N = A*S_h*S_w in the order (anchor, row, column).

    For cell (row i, column j) and anchor a, channels a*(5+K) + 0..4+K hold tx, ty, tw,
    th, the objectness logit and K class logits; the box centre is ((j + sigmoid(tx)) *
    W/S_w, (i + sigmoid(ty)) * H/S_h), its size (anchor_w * exp(tw), anchor_h *
    exp(th)) with tw, th capped at 20; objectness is a sigmoid, the classes a softmax."""
    anchors = torch.as_tensor(anchors, dtype=torch.float32, device=output.device)
    b, c, sh, sw = output.shape
    a = len(anchors)
    k = c // a - 5
    if k < 1 or c != a * (5 + k):
        raise ValueError(f"the output has {c} channels, which is not {a} anchors x "
                         f"(5 + classes)")
    p = output.float().reshape(b, a, 5 + k, sh, sw).permute(0, 1, 3, 4, 2)
    h, w = image_size
    rows = torch.arange(sh, device=output.device, dtype=torch.float32).view(1, 1, sh, 1)
    cols = torch.arange(sw, device=output.device, dtype=torch.float32).view(1, 1, 1, sw)
    cx = (cols + p[..., 0].sigmoid()) * (w / sw)
    cy = (rows + p[..., 1].sigmoid()) * (h / sh)
    bw = anchors[:, 0].view(1, a, 1, 1) * p[..., 2].clamp(max=20).exp()
    bh = anchors[:, 1].view(1, a, 1, 1) * p[..., 3].clamp(max=20).exp()
    boxes = torch.stack((cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2), dim=-1)
    objectness = p[..., 4].sigmoid().reshape(b, -1)
    classes = p[..., 5:].softmax(-1).reshape(b, -1, k)
    return boxes.reshape(b, -1, 4), objectness, classes


def box_iou(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """IoU of every box of a [N, 4] with every box of b [M, 4] (x1, y1, x2, y2) -> [N, M];
    0 where both boxes are empty."""
    size_a = (a[:, 2:4] - a[:, 0:2]).clamp(min=0)
    size_b = (b[:, 2:4] - b[:, 0:2]).clamp(min=0)
    area_a = size_a[:, 0] * size_a[:, 1]
    area_b = size_b[:, 0] * size_b[:, 1]
    lt = torch.maximum(a[:, None, :2], b[None, :, :2])
    rb = torch.minimum(a[:, None, 2:4], b[None, :, 2:4])
    wh = (rb - lt).clamp(min=0)
    inter = wh[..., 0] * wh[..., 1]
    union = area_a[:, None] + area_b[None, :] - inter
    return torch.where(union > 0, inter / union.clamp(min=torch.finfo(inter.dtype).tiny),
                       torch.zeros_like(inter))


def nms(boxes: torch.Tensor, scores: torch.Tensor, iou_threshold: float = IOU_THRESHOLD,
        classes: torch.Tensor | None = None) -> torch.Tensor:
    """Indices of the boxes [N, 4] kept by greedy non-maximum suppression, by decreasing
    score: each kept box removes every lower-scoring box whose IoU with it is greater
    than iou_threshold (equal scores keep their order). With classes [N], boxes of
    different classes never remove each other."""
    order = torch.sort(scores, descending=True, stable=True).indices
    if len(order) == 0:
        return order
    ordered = boxes[order].float()
    suppress = box_iou(ordered, ordered) > iou_threshold
    if classes is not None:
        same = classes[order]
        suppress &= same[:, None] == same[None, :]
    suppress = suppress.cpu()
    removed = torch.zeros(len(order), dtype=torch.bool)
    kept = []
    for i in range(len(order)):
        if not removed[i]:
            kept.append(i)
            removed |= suppress[i]
    return order[torch.tensor(kept, dtype=torch.long, device=order.device)]


def detect(output: torch.Tensor, score_threshold: float = SCORE_THRESHOLD,
           iou_threshold: float = IOU_THRESHOLD, max_detections: int = MAX_DETECTIONS,
           anchors: list[list[float]] = ANCHORS,
           image_size: tuple[int, int] = IMAGE_SIZE, candidates: int = CANDIDATES
           ) -> list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """Each image's detections (boxes [D, 4] x1, y1, x2, y2 in input pixels, clipped to
    the image; scores [D]; labels [D], indices into CLASSES), best first.

    A score is objectness * class probability; every (box, class) pair scoring above
    score_threshold is a candidate (at most `candidates`, the best), then class-wise
    non-maximum suppression at iou_threshold keeps at most max_detections."""
    h, w = image_size
    boxes, objectness, classes = decode(output, anchors, image_size)
    k = classes.shape[-1]
    scores = objectness[..., None] * classes
    results = []
    for image_boxes, image_scores in zip(boxes, scores, strict=True):
        flat = image_scores.flatten()
        keep = (flat > score_threshold).nonzero()[:, 0]
        if len(keep) > candidates:
            keep = keep[flat[keep].topk(candidates).indices]
        labels = keep % k
        chosen = image_boxes[keep // k].clone()
        chosen[:, 0::2] = chosen[:, 0::2].clamp(0, w)
        chosen[:, 1::2] = chosen[:, 1::2].clamp(0, h)
        chosen_scores = flat[keep]
        kept = nms(chosen, chosen_scores, iou_threshold, labels)[:max_detections]
        results.append((chosen[kept], chosen_scores[kept], labels[kept]))
    return results


#: The functions an exported file carries, in the order they are written.
CARRIED = (decode, box_iou, nms, detect)
#: Every name the carried code defines at the top of an exported file.
DEFINED_NAMES = frozenset({"ANCHORS", "IMAGE_SIZE", "CLASSES", "SCORE_THRESHOLD",
                           "IOU_THRESHOLD", "MAX_DETECTIONS", "CANDIDATES",
                           *(f.__name__ for f in CARRIED)})


def detection_source(anchors: Sequence[Sequence[float]], image_hw: tuple[int, int],
                     classes: Sequence[str] | None) -> str:
    """The constants and functions a detector's ``.py`` export carries: ``ANCHORS`` (the
    Output's [w, h] in input pixels), ``IMAGE_SIZE`` (the Input's H, W), ``CLASSES``
    (the checkpoint's names, or None when there is none: an untrained export knows only
    how many classes there are, and numbers would pass for names)."""
    names = ("None  # not known without a checkpoint: labels are class indices"
             if classes is None else json.dumps([str(c) for c in classes]))
    pairs = ", ".join(f"[{float(w)!r}, {float(h)!r}]" for w, h in anchors)
    constants = "\n".join([
        "# Decoding the head (SPEC §7 of Convas): anchors [w, h] in input pixels, the",
        "# input's (H, W), the class names and detect()'s defaults.",
        f"ANCHORS = [{pairs}]",
        f"IMAGE_SIZE = ({int(image_hw[0])}, {int(image_hw[1])})",
        f"CLASSES = {names}",
        f"SCORE_THRESHOLD = {SCORE_THRESHOLD!r}",
        f"IOU_THRESHOLD = {IOU_THRESHOLD!r}",
        f"MAX_DETECTIONS = {MAX_DETECTIONS!r}",
        f"CANDIDATES = {CANDIDATES!r}",
    ])
    return "\n\n\n".join([constants, *(inspect.getsource(f).strip() for f in CARRIED)])


def decode_description(num_anchors: int, num_classes: int | None,
                       grid_hw: tuple[int, int] | None) -> dict:
    """How to turn the raw head into boxes, for the ONNX metadata's ``convas.decode``: the
    rules of :func:`decode` and :func:`detect` for a program that reimplements them."""
    described: dict = {
        "output": "[B, A*(5+K), S_h, S_w], no decoding in the graph",
        "layout": "channel a*(5+K) + [tx, ty, tw, th, objectness, class logits (K)] for "
                  "anchor a of convas.anchors, at cell (row i, column j)",
        "num_anchors": int(num_anchors),
        "cx": "(j + sigmoid(tx)) * W / S_w",
        "cy": "(i + sigmoid(ty)) * H / S_h",
        "w": "anchor_w * exp(min(tw, 20))",
        "h": "anchor_h * exp(min(th, 20))",
        "box": "x1, y1, x2, y2 = cx - w/2, cy - h/2, cx + w/2, cy + h/2 in input pixels "
               "(H, W of convas.preprocess's size), clipped to the image",
        "objectness": "sigmoid",
        "classes": "softmax over the K class logits",
        "score": "sigmoid(objectness) * softmax(class logits)[k], for every box and class",
        "nms": "class-wise greedy non-maximum suppression: a box is removed when its IoU "
               "with a higher-scoring kept box of its class is greater than iou_threshold",
        "score_threshold": SCORE_THRESHOLD,
        "iou_threshold": IOU_THRESHOLD,
        "max_detections": MAX_DETECTIONS,
    }
    if num_classes is not None:
        described["num_classes"] = int(num_classes)
    if grid_hw is not None:
        described["grid"] = [int(grid_hw[0]), int(grid_hw[1])]
    return described
