"""Box geometry of detection (SPEC §7): IoU against hand-computed overlaps and an
independent per-pair loop, the centre/corner conversions, clipping."""

from __future__ import annotations

import pytest
import torch

from engine.detection import (
    box_iou,
    clip_boxes,
    cxcywh_to_xyxy,
    wh_iou,
    xyxy_to_cxcywh,
)


def _pair_iou(a: list[float], b: list[float]) -> float:
    """IoU of two xyxy boxes by the schoolbook formula, one pair at a time."""
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def _random_boxes(n: int, gen: torch.Generator) -> torch.Tensor:
    xy = torch.rand(n, 2, generator=gen) * 50
    wh = torch.rand(n, 2, generator=gen) * 20 + 0.5
    return torch.cat([xy, xy + wh], dim=1)


def test_box_iou_known_values() -> None:
    a = torch.tensor([[0.0, 0.0, 10.0, 10.0]])
    b = torch.tensor([
        [0.0, 0.0, 10.0, 10.0],  # same box
        [5.0, 0.0, 15.0, 10.0],  # half overlap: 50 / 150
        [10.0, 0.0, 20.0, 10.0],  # touching edge: no area in common
        [2.0, 2.0, 4.0, 4.0],  # inside: 4 / 100
    ])
    iou = box_iou(a, b)
    assert iou.shape == (1, 4)
    assert iou[0].tolist() == pytest.approx([1.0, 1 / 3, 0.0, 0.04])


def test_box_iou_matches_pairwise_loop_and_is_symmetric() -> None:
    gen = torch.Generator().manual_seed(3)
    a, b = _random_boxes(17, gen), _random_boxes(11, gen)
    iou = box_iou(a, b)
    assert iou.shape == (17, 11)
    for i in range(17):
        for j in range(11):
            assert iou[i, j].item() == pytest.approx(_pair_iou(a[i].tolist(), b[j].tolist()),
                                                     abs=1e-6)
    assert torch.allclose(box_iou(b, a), iou.T)
    assert ((iou >= 0) & (iou <= 1)).all()


def test_box_iou_empty_and_degenerate() -> None:
    assert box_iou(torch.zeros(0, 4), torch.zeros(3, 4)).shape == (0, 3)
    # two zero-area boxes: union 0 must give 0, not NaN
    z = torch.tensor([[5.0, 5.0, 5.0, 5.0]])
    assert box_iou(z, z).item() == 0.0
    # an inverted box has no area rather than a negative one
    inv = torch.tensor([[10.0, 10.0, 0.0, 0.0]])
    assert box_iou(inv, torch.tensor([[0.0, 0.0, 10.0, 10.0]])).item() == 0.0


def test_wh_iou_equals_box_iou_of_centred_boxes() -> None:
    gen = torch.Generator().manual_seed(5)
    wh1 = torch.rand(9, 2, generator=gen) * 30 + 1
    wh2 = torch.rand(4, 2, generator=gen) * 30 + 1
    centred = lambda wh: torch.cat([-wh / 2, wh / 2], dim=1)  # noqa: E731
    assert torch.allclose(wh_iou(wh1, wh2), box_iou(centred(wh1), centred(wh2)), atol=1e-6)
    assert wh_iou(torch.tensor([[4.0, 8.0]]), torch.tensor([[8.0, 4.0]])).item() == (
        pytest.approx(16 / 48))


def test_conversions_round_trip() -> None:
    gen = torch.Generator().manual_seed(7)
    boxes = _random_boxes(20, gen).reshape(4, 5, 4)  # any leading shape
    c = xyxy_to_cxcywh(boxes)
    assert c.shape == boxes.shape
    assert torch.allclose(c[..., 2], boxes[..., 2] - boxes[..., 0])
    assert torch.allclose(c[..., 0], (boxes[..., 0] + boxes[..., 2]) / 2)
    assert torch.allclose(cxcywh_to_xyxy(c), boxes, atol=1e-5)
    assert cxcywh_to_xyxy(torch.tensor([10.0, 20.0, 4.0, 6.0])).tolist() == [8, 17, 12, 23]


def test_clip_boxes_keeps_them_inside_and_leaves_input() -> None:
    boxes = torch.tensor([[-5.0, -2.0, 40.0, 10.0], [3.0, 4.0, 5.0, 50.0]])
    clipped = clip_boxes(boxes, h=32, w=24)
    assert clipped.tolist() == [[0, 0, 24, 10], [3, 4, 5, 32]]
    assert boxes[0, 0].item() == -5.0  # a new tensor
