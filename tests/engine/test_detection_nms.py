"""NMS (SPEC §7) against an independent, straightforward pure-Python greedy NMS with
torchvision.ops.nms semantics: descending score, equal scores in input order, a box is
discarded when its IoU with a kept box is *greater than* the threshold."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.detection import batched_nms, box_iou, nms


def _iou(a: list[float], b: list[float]) -> float:
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def _reference(boxes: list[list[float]], scores: list[float], thr: float,
               classes: list[int] | None = None) -> list[int]:
    order = sorted(range(len(boxes)), key=lambda i: -scores[i])  # stable
    kept: list[int] = []
    for i in order:
        if all((classes is not None and classes[i] != classes[k])
               or _iou(boxes[i], boxes[k]) <= thr for k in kept):
            kept.append(i)
    return kept


def _random(n: int, seed: int, classes: int = 1) -> tuple[torch.Tensor, ...]:
    gen = torch.Generator().manual_seed(seed)
    xy = torch.rand(n, 2, generator=gen) * 15
    wh = torch.rand(n, 2, generator=gen) * 25 + 1
    # coarse scores so that ties happen
    scores = torch.randint(0, 8, (n,), generator=gen).float() / 8
    return (torch.cat([xy, xy + wh], 1), scores,
            torch.randint(0, classes, (n,), generator=gen))


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("thr", [0.3, 0.5, 0.7])
def test_nms_matches_reference(seed: int, thr: float) -> None:
    boxes, scores, _ = _random(60, seed)
    keep = nms(boxes, scores, thr)
    assert keep.dtype == torch.long
    expected = _reference(boxes.tolist(), scores.tolist(), thr)
    assert keep.tolist() == expected
    assert 0 < len(expected) < 60  # the fixture really suppresses something


@pytest.mark.parametrize("seed", range(4))
def test_batched_nms_matches_per_class_reference(seed: int) -> None:
    boxes, scores, classes = _random(80, seed, classes=3)
    keep = batched_nms(boxes, scores, classes, 0.5)
    expected = _reference(boxes.tolist(), scores.tolist(), 0.5, classes.tolist())
    assert keep.tolist() == expected
    # class-wise: more survive than when classes are ignored
    assert len(keep) > len(nms(boxes, scores, 0.5))


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 20), st.integers(0, 20), st.integers(1, 12),
                          st.integers(1, 12), st.integers(0, 4), st.integers(0, 2)),
                max_size=25),
       st.sampled_from([0.0, 0.25, 0.5, 0.9]))
def test_nms_property(rows: list[tuple[int, ...]], thr: float) -> None:
    """Integer boxes produce exact IoU ties with the threshold (e.g. 1/4, 1/2)."""
    boxes = [[x, y, x + w, y + h] for x, y, w, h, _, _ in rows]
    scores = [s / 4 for *_, s, _ in rows]
    classes = [c for *_, c in rows]
    bt = torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4)
    st_ = torch.tensor(scores, dtype=torch.float32)
    ct = torch.tensor(classes, dtype=torch.long)
    assert nms(bt, st_, thr).tolist() == _reference(boxes, scores, thr)
    assert batched_nms(bt, st_, ct, thr).tolist() == _reference(boxes, scores, thr, classes)


def test_edge_cases() -> None:
    empty = nms(torch.zeros(0, 4), torch.zeros(0), 0.5)
    assert empty.shape == (0,) and empty.dtype == torch.long
    assert batched_nms(torch.zeros(0, 4), torch.zeros(0), torch.zeros(0, dtype=torch.long),
                       0.5).shape == (0,)
    one = torch.tensor([[1.0, 2.0, 3.0, 4.0]])
    assert nms(one, torch.tensor([0.3]), 0.5).tolist() == [0]
    # identical boxes: only the best survives; with equal scores, the first
    same = one.repeat(4, 1)
    assert nms(same, torch.tensor([0.2, 0.9, 0.5, 0.9]), 0.5).tolist() == [1]
    assert nms(same, torch.tensor([0.7, 0.7, 0.7, 0.7]), 0.99).tolist() == [0]
    # IoU exactly at the threshold is kept (torchvision discards only IoU > threshold)
    half = torch.tensor([[0.0, 0.0, 2.0, 1.0], [1.0, 0.0, 3.0, 1.0]])  # IoU 1/3
    assert nms(half, torch.tensor([0.9, 0.8]), 1 / 3).tolist() == [0, 1]
    assert nms(half, torch.tensor([0.9, 0.8]), 0.3).tolist() == [0]
    # the result is in decreasing score order
    assert nms(torch.tensor([[0.0, 0, 1, 1], [5.0, 5, 6, 6]]), torch.tensor([0.1, 0.8]),
               0.5).tolist() == [1, 0]


def test_bad_shapes_say_what_is_expected() -> None:
    with pytest.raises(ValueError, match=r"\[N, 4\]"):
        nms(torch.zeros(3, 5), torch.zeros(3), 0.5)
    with pytest.raises(ValueError, match="one per box"):
        nms(torch.zeros(3, 4), torch.zeros(2), 0.5)
    with pytest.raises(ValueError, match="classes"):
        batched_nms(torch.zeros(3, 4), torch.zeros(3), torch.zeros(2), 0.5)


def test_nms_of_thousands_of_boxes_keeps_no_overlapping_pair() -> None:
    boxes, _, classes = _random(3000, 11, classes=5)
    keep = batched_nms(boxes, torch.rand(3000), classes, 0.5)
    assert 0 < len(keep) < 3000
    kept, labels = boxes[keep], classes[keep]
    overlap = box_iou(kept, kept) > 0.5
    overlap &= labels[:, None] == labels[None, :]
    overlap.fill_diagonal_(False)
    assert not overlap.any()
