"""What a detector's exports carry besides the network (SPEC §7): the decoding of the
YOLO-style head and class-wise non-maximum suppression, as plain torch.

A detector's network ends at the raw head ``[B, A·(5+K), S_h, S_w]``; turning that into
boxes needs the anchors, the input size and the decoding rules. The ``.py`` export
writes the functions of :mod:`engine.detection.plain` into the file (their own source,
by :func:`inspect.getsource`) after module constants ``ANCHORS``, ``IMAGE_SIZE``,
``CLASSES`` and detect()'s defaults, so the file runs with torch alone. Those functions
are the engine's own decoding and NMS, so the export finds exactly the engine's boxes.
The ONNX export describes the same rules in words, :func:`decode_description`, for its
metadata.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Sequence

from ..detection.plain import (
    CANDIDATES,
    IOU_THRESHOLD,
    MAX_DETECTIONS,
    SCORE_THRESHOLD,
    box_iou,
    decode,
    detect,
    nms,
)

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
