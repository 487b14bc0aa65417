"""The detection mAP (SPEC §7) against pycocotools, the reference implementation, on
fixtures with perturbed truths, false positives, misses, duplicates, several classes,
a class never detected, a class never present and images without truths."""

from __future__ import annotations

import contextlib
import io
import math

import numpy as np
import pytest
import torch

from engine.detection import DetectionMeter, labels_to_truths

COCO = pytest.importorskip("pycocotools.coco")
COCOEVAL = pytest.importorskip("pycocotools.cocoeval")

Image = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]


def _fixture(seed: int, n_images: int = 30, k: int = 4, dup: float = 0.2) -> list[Image]:
    """Per image: truths (some images none), detections = jittered truths (some missed,
    some duplicated, some with the wrong class) plus random false positives."""
    rng = np.random.default_rng(seed)
    images = []
    for i in range(n_images):
        g = 0 if i % 7 == 3 else int(rng.integers(1, 6))
        xy = rng.uniform(0, 80, (g, 2))
        wh = rng.uniform(4, 30, (g, 2))
        tb = np.concatenate([xy, xy + wh], 1)
        tl = rng.integers(0, k - 1, g)  # class k-1 never has a truth
        boxes, labels = [], []
        for b, c in zip(tb, tl, strict=True):
            if rng.random() < 0.2:  # missed
                continue
            for _ in range(2 if rng.random() < dup else 1):
                size = b[2:] - b[:2]
                boxes.append(b + rng.normal(0, 0.12, 4) * np.tile(size, 2))
                labels.append(c if rng.random() < 0.9 else (c + 1) % (k - 1))
        for _ in range(int(rng.integers(0, 4))):  # false positives, any class
            xy = rng.uniform(0, 80, 2)
            boxes.append(np.concatenate([xy, xy + rng.uniform(4, 30, 2)]))
            labels.append(int(rng.integers(0, k)))
        pb = np.array(boxes, np.float64).reshape(-1, 4)
        pb[:, 2:] = np.maximum(pb[:, 2:], pb[:, :2] + 0.5)
        ps = rng.uniform(0.05, 1.0, len(pb))
        images.append((pb, ps, np.array(labels, np.int64), tb, tl.astype(np.int64)))
    return images


def _pycocotools(images: list[Image], k: int) -> tuple[float, float, list[float]]:
    """map50, map and per-class AP50 computed by pycocotools from COCO dicts."""
    gt = {"images": [{"id": i, "width": 200, "height": 200} for i in range(len(images))],
          "categories": [{"id": c, "name": str(c)} for c in range(k)], "annotations": []}
    dets = []
    for i, (pb, ps, pl, tb, tl) in enumerate(images):
        for b, c in zip(tb, tl, strict=True):
            w, h = float(b[2] - b[0]), float(b[3] - b[1])
            gt["annotations"].append({
                "id": len(gt["annotations"]) + 1, "image_id": i, "category_id": int(c),
                "bbox": [float(b[0]), float(b[1]), w, h], "area": w * h, "iscrowd": 0})
        for b, s, c in zip(pb, ps, pl, strict=True):
            dets.append({"image_id": i, "category_id": int(c), "score": float(s),
                         "bbox": [float(b[0]), float(b[1]), float(b[2] - b[0]),
                                  float(b[3] - b[1])]})
    with contextlib.redirect_stdout(io.StringIO()):
        coco = COCO.COCO()
        coco.dataset = gt
        coco.createIndex()
        ev = COCOEVAL.COCOeval(coco, coco.loadRes(dets), "bbox")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    prec = ev.eval["precision"][:, :, :, 0, 2]  # [T, R, K], area all, maxDets 100
    per_class = [float(prec[0, :, c].mean()) if (prec[0, :, c] > -1).any() else -1.0
                 for c in range(k)]
    return float(ev.stats[1]), float(ev.stats[0]), per_class


def _meter(images: list[Image], k: int) -> DetectionMeter:
    meter = DetectionMeter(num_classes=k)
    for pb, ps, pl, tb, tl in images:
        meter.add(torch.from_numpy(pb).float(), torch.from_numpy(ps), torch.from_numpy(pl),
                  torch.from_numpy(tb).float(), torch.from_numpy(tl))
    return meter


def _as_float32(images: list[Image]) -> list[Image]:
    """Boxes rounded to float32 once, so both sides see the same coordinates."""
    return [(pb.astype(np.float32).astype(np.float64), ps, pl,
             tb.astype(np.float32).astype(np.float64), tl) for pb, ps, pl, tb, tl in images]


@pytest.mark.parametrize("seed", range(5))
def test_map_matches_pycocotools(seed: int) -> None:
    k = 4
    images = _as_float32(_fixture(seed, k=k))
    got = _meter(images, k).compute()
    map50, map_, per_class = _pycocotools(images, k)
    assert got["map50"] == pytest.approx(map50, abs=1e-3)
    assert got["map"] == pytest.approx(map_, abs=1e-3)
    for ours, ref in zip(got["per_class_ap50"], per_class, strict=True):
        assert (ours is None) == (ref == -1.0)
        if ours is not None:
            assert ours == pytest.approx(ref, abs=1e-3)
    assert got["per_class_ap50"][k - 1] is None  # the class without truths is left out
    assert 0.05 < got["map"] < got["map50"] < 0.99  # a fixture with something to measure


def test_map_with_heavy_duplicates_and_crowded_images() -> None:
    """Many overlapping truths per image and many duplicate detections stress the
    greedy matching (which truth a detection takes) and the 100-per-class cap."""
    rng = np.random.default_rng(42)
    images: list[Image] = []
    for _ in range(6):
        g = 60
        xy = rng.uniform(0, 30, (g, 2))
        tb = np.concatenate([xy, xy + rng.uniform(8, 20, (g, 2))], 1)
        tl = rng.integers(0, 2, g)
        pb = np.repeat(tb, 4, axis=0) + rng.normal(0, 1.5, (4 * g, 4))
        pb[:, 2:] = np.maximum(pb[:, 2:], pb[:, :2] + 0.5)
        pl = np.repeat(tl, 4)
        ps = rng.uniform(0, 1, 4 * g)
        images.append((pb, ps, pl, tb, tl))
    images = _as_float32(images)
    got = _meter(images, 2).compute()
    map50, map_, _ = _pycocotools(images, 2)
    assert got["map50"] == pytest.approx(map50, abs=1e-3)
    assert got["map"] == pytest.approx(map_, abs=1e-3)


def test_perfect_and_empty_cases() -> None:
    tb = np.array([[0, 0, 10, 10], [20, 20, 40, 30]], np.float64)
    tl = np.array([0, 1])
    perfect = DetectionMeter(num_classes=3)
    perfect.add(tb, np.array([0.9, 0.8]), tl, tb, tl)
    perfect.add(np.zeros((0, 4)), np.zeros(0), np.zeros(0), np.zeros((0, 4)), np.zeros(0))
    out = perfect.compute()
    assert out["map"] == pytest.approx(1.0) and out["map50"] == pytest.approx(1.0)
    assert out["per_class_ap50"][2] is None and out["truths"] == 2 and out["images"] == 2
    # a class with truths but no detection at all scores 0
    missing = DetectionMeter(num_classes=2)
    missing.add(tb[:1], np.array([0.9]), tl[:1], tb, tl)
    assert missing.compute()["per_class_ap50"] == [pytest.approx(1.0), 0.0]
    # nothing to measure: undefined, not a crash and not a fake number
    assert math.isnan(DetectionMeter(num_classes=2).compute()["map"])


def test_padding_rows_of_dataset_labels_are_ignored() -> None:
    y = torch.tensor([[1, 0, 0, 10, 10], [-1, 0, 0, 0, 0], [-1, 0, 0, 0, 0]], dtype=torch.float32)
    boxes, labels = labels_to_truths(y)
    assert boxes.tolist() == [[0, 0, 10, 10]] and labels.tolist() == [1]
    a, b = DetectionMeter(2), DetectionMeter(2)
    pred = (torch.tensor([[1.0, 0, 10, 10]]), torch.tensor([0.5]), torch.tensor([1]))
    a.add(*pred, y[:, 1:], y[:, 0].long())
    b.add(*pred, boxes, labels)
    assert a.compute() == b.compute()


def test_image_errors_counts_misses_and_false_detections() -> None:
    meter = DetectionMeter(num_classes=2)
    tb = np.array([[0, 0, 10, 10], [50, 50, 60, 60], [20, 0, 30, 10]], np.float64)
    tl = np.array([0, 0, 1])
    pb = np.array([
        [0, 0, 10, 11],  # hit truth 0
        [0, 0, 10, 10],  # duplicate of truth 0: false
        [20, 0, 30, 10],  # right place, wrong class: false, truth 2 missed
        [70, 70, 80, 80],  # nothing there, but under the score threshold
    ], np.float64)
    meter.add(pb, np.array([0.9, 0.8, 0.7, 0.1]), np.array([0, 0, 0, 1]), tb, tl)
    meter.add(tb, np.array([0.9, 0.9, 0.9]), tl, tb, tl)  # perfect image
    assert meter.image_errors() == [(2, 2), (0, 0)]
    assert meter.image_errors(score_threshold=0.0) == [(2, 3), (0, 0)]
    assert meter.image_errors(score_threshold=0.95) == [(3, 0), (3, 0)]


def test_bad_input_says_what_to_do() -> None:
    meter = DetectionMeter(num_classes=2)
    with pytest.raises(ValueError, match="one score and one label per box"):
        meter.add(np.zeros((2, 4)), np.zeros(3), np.zeros(2), np.zeros((0, 4)), np.zeros(0))
    with pytest.raises(ValueError, match=r"\[N, 4\]"):
        meter.add(np.zeros((2, 5)), np.zeros(2), np.zeros(2), np.zeros((0, 4)), np.zeros(0))
    with pytest.raises(ValueError, match="0..1"):
        meter.add(np.zeros((1, 4)), np.zeros(1), np.array([2]), np.zeros((0, 4)), np.zeros(0))


def test_a_thousand_images_of_a_hundred_detections() -> None:
    """A validation-sized pass (its speed is benchmarked, not asserted: CI is noisy)."""
    rng = np.random.default_rng(0)
    meter = DetectionMeter(num_classes=5)
    images = []
    for _ in range(1000):
        g = int(rng.integers(0, 8))
        xy = rng.uniform(0, 200, (g, 2))
        tb = np.concatenate([xy, xy + rng.uniform(5, 50, (g, 2))], 1)
        xy = rng.uniform(0, 200, (100, 2))
        pb = np.concatenate([xy, xy + rng.uniform(5, 50, (100, 2))], 1)
        pb[: 2 * g] = np.repeat(tb, 2, axis=0) + rng.normal(0, 2, (2 * g, 4))
        images.append((torch.from_numpy(pb).float(), torch.rand(100), torch.randint(0, 5, (100,)),
                       torch.from_numpy(tb).float(), torch.from_numpy(rng.integers(0, 5, g))))
    for image in images:
        meter.add(*image)
    out = meter.compute()
    assert out["images"] == 1000 and 0 < out["map50"] < 1
    assert len(meter.image_errors()) == 1000
