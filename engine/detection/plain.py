"""The detection rules an exported detector carries (SPEC §7), as plain torch: decoding
the YOLO-style head, box IoU, class-wise non-maximum suppression and detect().

These are the engine's own definitions (engine.detection.yolo, .boxes and .nms call
them) and, by :func:`inspect.getsource`, the code a detector's ``.py`` export writes
into its file (engine.export.detection_source), so the two can never drift apart.
Hence the rules for this module: torch is its one import, and the functions use no
other module-level names than each other and the constants below, which an exported
file defines with its own values.
"""

from __future__ import annotations

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
    """IoU of every box of a [N, 4] with every box of b [M, 4] (x1, y1, x2, y2) -> [N, M].

    Continuous pixel coordinates (no COCO-1.0-style "+1"), as modern pycocotools and
    torchvision use; an inverted box has area 0, so an IoU never exceeds 1; two empty
    boxes have IoU 0 (union 0 is guarded), so NMS never divides by zero."""
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
    different classes never remove each other.

    The boxes are taken in blocks of 62: the IoU of a block with the boxes after it is
    one vectorised step (so memory stays at 62 x N), the greedy pass inside a block reads
    Python integers used as bit sets (bit k: box k of the block), and the block's kept
    boxes then remove the later ones in one step."""
    order = torch.sort(scores, descending=True, stable=True).indices
    n = len(order)
    ordered = boxes[order].float()
    same = None if classes is None else classes[order]
    removed = torch.zeros(n, dtype=torch.bool, device=boxes.device)
    bits = 1 << torch.arange(62, device=boxes.device)     # 62 bits fit an int64's sum
    kept: list[int] = []
    for start in range(0, n, 62):
        stop = min(start + 62, n)
        rows = box_iou(ordered[start:stop], ordered[start:]) > iou_threshold
        if same is not None:
            rows &= same[start:stop, None] == same[None, start:]
        m = stop - start
        masks = (rows[:, :m].long() * bits[:m]).sum(1).tolist()
        gone = int((removed[start:stop].long() * bits[:m]).sum())
        block = []
        for k in range(m):
            if not gone >> k & 1:
                block.append(k)
                gone |= masks[k]
        kept.extend(start + k for k in block)
        removed[start:] |= rows[block].any(0)
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
