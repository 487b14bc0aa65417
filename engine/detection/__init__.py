"""Object detection (SPEC §7): box geometry, NMS, the COCO mAP, anchor k-means and the
YOLO-style head. No Qt; each module is usable on its own.

A plain list of re-exports, one import line per module, so that modules added beside
these only add lines (the file-wide noqa lets those lines re-export without ``__all__``).
"""

# ruff: noqa: F401

from .anchors import kmeans_anchors, mean_best_iou
from .boxes import box_area, box_iou, clip_boxes, cxcywh_to_xyxy, wh_iou, xyxy_to_cxcywh
from .metrics import DetectionMeter, labels_to_truths
from .nms import batched_nms, nms
from .yolo import (
    YoloHead,
    YoloLoss,
    decode,
    detect,
    encode_targets,
    head_channels,
    positives_found,
    split_output,
)
