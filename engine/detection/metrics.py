"""Detection quality: the COCO mean average precision and, per image, what went wrong
(SPEC §7).

The COCO numbers are the ones people compare detectors by, so :class:`DetectionMeter`
computes them exactly as pycocotools does for area "all" and ``maxDets`` 100 (no crowd
regions): per image and class the detections, by descending score, are kept up to 100
and matched greedily, each to the unmatched truth of its class with the highest IoU
(at least the threshold); precision is made monotone and read at the 101 recall points
0, 0.01, …, 1; AP averages those, ``map`` also over the IoU thresholds 0.50:0.05:0.95,
and classes without a single truth are left out of the mean. IoU uses continuous pixel
coordinates (no "+1"), as modern pycocotools does.

Why not pycocotools itself: it is a test-only dependency, goes through JSON-like dicts
and is slow per image; here the matching is vectorised over images and thresholds
(one pass per detection rank), so validating ~1,000 images takes a fraction of a second.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from .plain import box_iou

#: COCO's IoU thresholds 0.50:0.05:0.95 (built like pycocotools so the floats agree).
IOU_THRESHOLDS = np.linspace(0.5, 0.95, int(np.round((0.95 - 0.5) / 0.05)) + 1, endpoint=True)
#: COCO's 101 recall points.
RECALL_POINTS = np.linspace(0.0, 1.0, int(np.round(1.0 / 0.01)) + 1, endpoint=True)
#: Detections per image and class that count (COCO's maxDets).
MAX_DETECTIONS = 100

ArrayLike = Tensor | np.ndarray


def _np(x: ArrayLike, dtype: type, shape_tail: tuple[int, ...], what: str) -> np.ndarray:
    a = x.detach().cpu().numpy() if isinstance(x, Tensor) else np.asarray(x)
    a = a.astype(dtype, copy=False)
    if a.size == 0:
        a = a.reshape((0, *shape_tail))
    if a.ndim != 1 + len(shape_tail) or a.shape[1:] != shape_tail:
        want = "[N" + "".join(f", {s}" for s in shape_tail) + "]"
        raise ValueError(f"DetectionMeter.add: {what} must be {want}, got {list(a.shape)}")
    return a


def _iou_np(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU ``[N, M]`` of xyxy boxes in float64 (the precision pycocotools works in):
    :func:`engine.detection.plain.box_iou`, the one IoU of every part of detection."""
    return box_iou(torch.from_numpy(a), torch.from_numpy(b)).numpy()


@dataclass
class _Image:
    """One image: its detections sorted by descending score (stable), the ones past
    ``MAX_DETECTIONS`` of their class already dropped, and its IoU with the truths
    (-1 between different classes, so they can never match)."""

    scores: np.ndarray  # [D] float64
    labels: np.ndarray  # [D] int64
    true_labels: np.ndarray  # [G] int64
    iou: np.ndarray  # [D, G] float64


def _match(images: list[_Image], thresholds: np.ndarray) -> list[np.ndarray]:
    """For every image a ``[T, D]`` boolean: detection matched a truth at threshold t.

    Greedy in score order; each detection takes the still-unmatched truth with the
    highest IoU ≥ t, and on equal IoU the later truth (pycocotools' loop keeps replacing
    while ``iou >= best``). Images are processed in buckets of similar truth counts,
    all images and thresholds of a bucket at once, one step per detection rank.
    """
    out: list[np.ndarray] = [np.zeros((len(thresholds), len(im.scores)), bool) for im in images]
    buckets: dict[int, list[int]] = {}
    for i, im in enumerate(images):
        g, d = im.iou.shape[1], im.iou.shape[0]
        if g and d:
            buckets.setdefault(1 << (g - 1).bit_length(), []).append(i)
    thr = np.minimum(thresholds, 1 - 1e-10)[None, :, None]  # [1, T, 1]
    for idx in buckets.values():
        d_max = max(images[i].iou.shape[0] for i in idx)
        g_max = max(images[i].iou.shape[1] for i in idx)
        iou = np.full((len(idx), d_max, g_max), -1.0)
        for row, i in enumerate(idx):
            m = images[i].iou
            iou[row, : m.shape[0], : m.shape[1]] = m
        free = np.ones((len(idx), len(thresholds), g_max), bool)
        matched = np.zeros((len(idx), len(thresholds), d_max), bool)
        rows = np.arange(len(idx))[:, None]
        cols = np.arange(len(thresholds))[None, :]
        for d in range(d_max):
            r = iou[:, None, d, :]  # [I, 1, G]
            cand = np.where(free & (r >= thr), r, -np.inf)  # [I, T, G]
            j = g_max - 1 - cand[..., ::-1].argmax(-1)  # last best truth, [I, T]
            ok = np.take_along_axis(cand, j[..., None], -1)[..., 0] > -np.inf
            matched[:, :, d] = ok
            free[rows, cols, j] &= ~ok
        for row, i in enumerate(idx):
            out[i] = matched[row, :, : len(images[i].scores)]
    return out


class DetectionMeter:
    """Accumulates one validation pass, image by image, and computes the COCO mAP.

    ``num_classes`` fixes the length of the per-class lists; left ``None`` it is
    inferred from the largest label seen.
    """

    def __init__(self, num_classes: int | None = None) -> None:
        self.num_classes = num_classes
        self._images: list[_Image] = []
        self._matched: list[np.ndarray] | None = None

    def __len__(self) -> int:
        return len(self._images)

    def add(self, pred_boxes: ArrayLike, pred_scores: ArrayLike, pred_labels: ArrayLike,
            true_boxes: ArrayLike, true_labels: ArrayLike) -> None:
        """Record one image: predictions ``[D, 4]`` xyxy, ``[D]`` scores, ``[D]`` class
        indices, truths ``[G, 4]`` xyxy and ``[G]`` classes. Truth rows with class < 0
        (the padding rows of a detection dataset's labels) are ignored, so a label
        tensor's rows can be passed as they are."""
        boxes = _np(pred_boxes, np.float64, (4,), "pred_boxes")
        scores = _np(pred_scores, np.float64, (), "pred_scores")
        labels = _np(pred_labels, np.int64, (), "pred_labels")
        tboxes = _np(true_boxes, np.float64, (4,), "true_boxes")
        tlabels = _np(true_labels, np.int64, (), "true_labels")
        if not len(boxes) == len(scores) == len(labels):
            raise ValueError(
                f"DetectionMeter.add: {len(boxes)} boxes, {len(scores)} scores and "
                f"{len(labels)} labels; give one score and one label per box"
            )
        if len(tboxes) != len(tlabels):
            raise ValueError(
                f"DetectionMeter.add: {len(tboxes)} true boxes but {len(tlabels)} true "
                "labels; give one label per box"
            )
        keep = tlabels >= 0
        tboxes, tlabels = tboxes[keep], tlabels[keep]
        k = self.num_classes
        if k is not None and (np.any(labels >= k) or np.any(labels < 0) or np.any(tlabels >= k)):
            raise ValueError(
                f"DetectionMeter.add: class indices must lie in 0..{k - 1} (the meter was "
                f"made for {k} classes); check the labels against the dataset's classes"
            )
        order = np.argsort(-scores, kind="mergesort")
        boxes, scores, labels = boxes[order], scores[order], labels[order]
        if len(labels) > MAX_DETECTIONS:  # COCO's maxDets: the first 100 of each class
            by_class = np.argsort(labels, kind="stable")  # score order kept within a class
            grouped = labels[by_class]
            first = np.searchsorted(grouped, grouped, side="left")
            rank = np.empty(len(labels), np.int64)
            rank[by_class] = np.arange(len(labels)) - first
            keep = rank < MAX_DETECTIONS
            boxes, scores, labels = boxes[keep], scores[keep], labels[keep]
        iou = _iou_np(boxes, tboxes)
        iou[labels[:, None] != tlabels[None, :]] = -1.0
        self._images.append(_Image(scores, labels, tlabels, iou))
        self._matched = None

    def _matches(self) -> list[np.ndarray]:
        if self._matched is None:
            self._matched = _match(self._images, IOU_THRESHOLDS)
        return self._matched

    def _classes(self) -> int:
        if self.num_classes is not None:
            return self.num_classes
        top = [int(a.max()) for im in self._images for a in (im.labels, im.true_labels) if len(a)]
        return max(top, default=-1) + 1

    def compute(self) -> dict[str, float | int | list[float | None]]:
        """``map50``, ``map75``, ``map`` (0..1; NaN when no class has a single truth,
        where AP is undefined), ``per_class_ap50`` and ``per_class_ap`` (``None`` for a
        class without truths), ``images`` and ``truths`` counted."""
        k = self._classes()
        matched = self._matches()
        t = len(IOU_THRESHOLDS)
        if self._images:
            scores = np.concatenate([im.scores for im in self._images])
            labels = np.concatenate([im.labels for im in self._images])
            image = np.concatenate([np.full(len(im.scores), i) for i, im in
                                    enumerate(self._images)])
            pos = np.concatenate([np.arange(len(im.scores)) for im in self._images])
            hits = np.concatenate(matched, axis=1)  # [T, total detections]
            truths = np.bincount(np.concatenate([im.true_labels for im in self._images]),
                                 minlength=k)
        else:
            scores = labels = image = pos = np.zeros(0)
            hits = np.zeros((t, 0), bool)
            truths = np.zeros(k, np.int64)
        # pycocotools' order: score, then image, then rank within the image
        order = np.lexsort((pos, image, -scores))
        ap = np.full((k, t), np.nan)
        for c in range(k):
            n_true = int(truths[c]) if c < len(truths) else 0
            if n_true == 0:
                continue
            sel = order[labels[order] == c]
            tp = np.cumsum(hits[:, sel], axis=1, dtype=np.float64)
            fp = np.cumsum(~hits[:, sel], axis=1, dtype=np.float64)
            recall = tp / n_true
            precision = tp / (tp + fp + np.spacing(1))
            # the precision envelope: best precision at any recall at least this high
            precision = np.maximum.accumulate(precision[:, ::-1], axis=1)[:, ::-1]
            for ti in range(t):
                at = np.searchsorted(recall[ti], RECALL_POINTS, side="left")
                q = np.zeros(len(RECALL_POINTS))
                inside = at < len(sel)
                q[inside] = precision[ti, at[inside]]
                ap[c, ti] = q.mean()
        has = ~np.isnan(ap[:, 0])
        i75 = int(np.argmin(np.abs(IOU_THRESHOLDS - 0.75)))

        def mean(x: np.ndarray) -> float:
            return float(x[has].mean()) if has.any() else float("nan")

        ap_all = ap.mean(axis=1)
        return {
            "map50": mean(ap[:, 0]),
            "map75": mean(ap[:, i75]),
            "map": mean(ap_all),
            "per_class_ap50": [float(a) if h else None for a, h in zip(ap[:, 0], has, strict=True)],
            "per_class_ap": [float(a) if h else None for a, h in zip(ap_all, has, strict=True)],
            "images": len(self._images),
            "truths": int(truths.sum()),
        }

    def image_errors(self, score_threshold: float = 0.25) -> list[tuple[int, int]]:
        """Per image ``(missed truths, false detections)`` at IoU 0.5, counting only
        detections scoring at least ``score_threshold`` (0.25, the default detection
        threshold of ``detect``, so the counts describe what the user is shown): the
        material of the "worst images" gallery.

        Matching is greedy by score, so dropping the low-scoring detections does not
        change which of the others match; the IoU-0.5 matching of the mAP is reused.
        """
        out: list[tuple[int, int]] = []
        for im, m in zip(self._images, self._matches(), strict=True):
            shown = im.scores >= score_threshold
            hit = m[0] & shown
            out.append((len(im.true_labels) - int(hit.sum()), int((shown & ~m[0]).sum())))
        return out


def labels_to_truths(y: Tensor) -> tuple[Tensor, Tensor]:
    """Split one image's label rows ``[M, 5]`` ``(class, x1, y1, x2, y2)`` into boxes
    ``[G, 4]`` and classes ``[G]``, dropping the padding rows (class -1)."""
    keep = y[:, 0] >= 0
    return y[keep, 1:5], y[keep, 0].to(torch.long)
