"""How well a detector's anchors fit a dataset's boxes, and the anchors k-means would
choose instead (engine.detection.anchors): one computation for Edit → Fit Anchors to
Dataset… (``anchor_fit``) and ``convas summary --dataset``, kept free of Qt so the
command line does not load it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class AnchorFit:
    """The current anchors, the fitted ones, and their mean best IoU on the boxes."""

    source: str
    boxes: int                       # training boxes the fit saw
    current: list[list[float]]
    fitted: list[list[float]]
    before: float
    after: float


def box_sizes(rows: np.ndarray) -> np.ndarray:
    """The (width, height) of every true box in box rows [N, M, 5] (class −1 rows are
    padding), [B, 2] float64."""
    r = np.asarray(rows, dtype=np.float64).reshape(-1, 5)
    r = r[r[:, 0] >= 0]
    return np.stack([r[:, 3] - r[:, 1], r[:, 4] - r[:, 2]], axis=1)


def fit_anchors(rows: np.ndarray, current: list[list[float]], source: str = "") -> AnchorFit:
    """k-means anchors (as many as ``current``) for the boxes in ``rows``; raises
    ValueError with what to do when the boxes cannot give that many."""
    from engine.detection.anchors import kmeans_anchors, mean_best_iou

    wh = box_sizes(rows)
    if not len(wh):
        raise ValueError("the training set has no boxes to fit anchors to")
    fitted = kmeans_anchors(wh, len(current))
    return AnchorFit(source, len(wh), [list(map(float, a)) for a in current],
                     [[float(w), float(h)] for w, h in fitted],
                     mean_best_iou(wh, np.asarray(current)), mean_best_iou(wh, fitted))
