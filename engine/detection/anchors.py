"""Anchor sizes fitted to a dataset's boxes (SPEC §7): k-means on box widths and
heights with the distance 1 − IoU.

Why IoU and not Euclidean distance: a head learns a box as a scaling of its anchor, and
a true box is assigned to the anchor it overlaps best (``wh_iou``), so anchors should be
good *overlaps*; with Euclidean distance large boxes would dominate and small objects
would get no anchor of their own. The fit is deterministic for a given ``seed``
(k-means++-style start, a few restarts, the best kept), so suggestions do not change
between clicks.
"""

from __future__ import annotations

import numpy as np
import torch

from .boxes import wh_iou

#: Restarts from different k-means++ starts; the one with the best mean IoU is kept.
RESTARTS = 3
#: Iterations per restart at most (stops earlier once the assignment is stable).
MAX_ITERATIONS = 300


def _iou(wh: np.ndarray, anchors: np.ndarray) -> np.ndarray:
    return wh_iou(torch.from_numpy(wh), torch.from_numpy(anchors)).numpy()


def _clean(wh: np.ndarray) -> np.ndarray:
    """Boxes as float64 ``[N, 2]``, boxes without area dropped (they overlap nothing)."""
    a = np.asarray(wh, dtype=np.float64)
    if a.ndim != 2 or a.shape[1] != 2:
        raise ValueError(f"box sizes must be [N, 2] (width, height), got {list(a.shape)}")
    return a[(a[:, 0] > 0) & (a[:, 1] > 0)]


def _start(wh: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """k-means++ with 1 − IoU: each next centre drawn with probability ∝ distance² to
    the nearest chosen one, so the start already spreads over the sizes present."""
    centres = [wh[rng.integers(len(wh))]]
    for _ in range(1, k):
        d = 1.0 - _iou(wh, np.stack(centres)).max(axis=1)
        p = d**2
        total = p.sum()
        i = rng.choice(len(wh), p=p / total) if total > 0 else rng.integers(len(wh))
        centres.append(wh[i])
    return np.stack(centres)


def _fit(wh: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    centres = _start(wh, k, rng)
    assign = np.full(len(wh), -1)
    for _ in range(MAX_ITERATIONS):
        iou = _iou(wh, centres)
        new = iou.argmax(axis=1)
        if np.array_equal(new, assign):
            break
        assign = new
        for c in range(k):
            members = wh[assign == c]
            if len(members):
                centres[c] = members.mean(axis=0)
            else:  # an empty cluster takes the box worst served by the others
                centres[c] = wh[iou.max(axis=1).argmin()]
    return centres


def kmeans_anchors(wh: np.ndarray, k: int, seed: int = 0) -> np.ndarray:
    """``k`` anchors ``[k, 2]`` (width, height in input pixels) fitted to the box sizes
    ``wh`` ``[N, 2]``, sorted by area, rounded to 0.1 px.

    Raises ``ValueError`` when there are fewer distinct box sizes than ``k`` (k-means
    would have to invent anchors no box needs: ask for fewer anchors instead).
    """
    if k < 1:
        raise ValueError(f"the number of anchors must be at least 1, got {k}")
    boxes = _clean(wh)
    distinct = len(np.unique(boxes, axis=0))
    if distinct < k:
        raise ValueError(
            f"cannot fit {k} anchors to {distinct} distinct box size(s); "
            f"ask for at most {distinct} anchors or use a dataset with more boxes"
        )
    rng = np.random.default_rng(seed)
    best, best_score = None, -1.0
    for _ in range(RESTARTS):
        centres = _fit(boxes, k, rng)
        score = float(_iou(boxes, centres).max(axis=1).mean())
        if score > best_score:
            best, best_score = centres, score
    assert best is not None
    best = best[np.argsort(best[:, 0] * best[:, 1], kind="stable")]
    return np.maximum(np.round(best, 1), 0.1)


def mean_best_iou(wh: np.ndarray, anchors: np.ndarray) -> float:
    """Mean over the boxes of the IoU with their best anchor (shapes sharing a centre):
    how well a set of anchors covers a dataset (1 = every box is exactly an anchor).
    Boxes without area are left out; 0.0 when none remain."""
    boxes = _clean(wh)
    a = np.asarray(anchors, dtype=np.float64).reshape(-1, 2)
    if len(boxes) == 0 or len(a) == 0:
        return 0.0
    return float(_iou(boxes, a).max(axis=1).mean())
