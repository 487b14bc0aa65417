"""The YOLO head (engine.detection.yolo): target assignment, decoding, the loss and
detect()."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from engine.detection.yolo import (
    YoloHead,
    YoloLoss,
    decode,
    detect,
    encode_targets,
    head_channels,
    positives_found,
    split_output,
)

ANCHORS = torch.tensor([[8.0, 8.0], [16.0, 16.0], [32.0, 20.0]])
IMAGE = (64, 64)
GRID = (8, 8)
K = 5


def _labels(rows: list[list[list[float]]]) -> torch.Tensor:
    """[B, M, 5] with class −1 padding rows to the longest image."""
    m = max(1, max(len(r) for r in rows))
    y = torch.zeros(len(rows), m, 5)
    y[..., 0] = -1
    for b, boxes in enumerate(rows):
        for n, row in enumerate(boxes):
            y[b, n] = torch.tensor(row)
    return y


def _logit(p: torch.Tensor) -> torch.Tensor:
    return torch.log(p / (1 - p))


def _perfect_output(y: torch.Tensor) -> torch.Tensor:
    """The output a perfect network would give: logits whose sigmoid/exp give the
    targets, objectness high only at the assigned cells, the true class most likely."""
    t = encode_targets(y, ANCHORS, GRID, IMAGE, K)
    b = len(y)
    p = torch.zeros(b, len(ANCHORS), *GRID, 5 + K)
    p[..., 0:2] = _logit(t.txy.clamp(1e-6, 1 - 1e-6))
    p[..., 2:4] = t.twh
    p[..., 4] = torch.where(t.positive, 12.0, -12.0)
    p[..., 5:] = torch.nn.functional.one_hot(t.label, K) * 12.0
    return p.permute(0, 1, 4, 2, 3).reshape(b, -1, *GRID)


def test_head_geometry():
    assert head_channels(3, 5) == 30
    head = YoloHead.from_output((30, 8, 4), 3)
    assert head == YoloHead(3, 5, (8, 4))
    with pytest.raises(ValueError, match="3 anchors"):
        YoloHead.from_output((31, 8, 8), 3)
    out = torch.arange(2 * 30 * 8 * 8, dtype=torch.float32).view(2, 30, 8, 8)
    p = split_output(out, 3, 5)
    assert p.shape == (2, 3, 8, 8, 10)
    # anchor 1, row 2, column 5, channel 4 (objectness) = channel 1·10 + 4 of the output
    assert p[1, 1, 2, 5, 4] == out[1, 14, 2, 5]
    channels_last = out.contiguous(memory_format=torch.channels_last)
    assert torch.equal(split_output(channels_last, 3, 5), p)


def test_each_box_goes_to_its_centres_cell_and_best_anchor():
    # centre (20, 44) is in row 5, column 2 of an 8×8 grid of 8 px cells; 30×18 is
    # closest in shape to the 32×20 anchor; 7×9 to the 8×8 one
    y = _labels([[[3, 5, 35, 35, 53], [1, 56, 0, 63, 9]], []])
    t = encode_targets(y, ANCHORS, GRID, IMAGE, K)
    assert t.positive.shape == (2, 3, 8, 8)
    assert t.positive.sum() == 2
    assert t.positive[0, 2, 5, 2] and t.positive[0, 0, 0, 7]
    assert not t.positive[1].any()
    assert t.label[0, 2, 5, 2] == 3 and t.label[0, 0, 0, 7] == 1
    assert torch.allclose(t.txy[0, 2, 5, 2], torch.tensor([0.5, 0.5]))
    assert torch.allclose(t.twh[0, 2, 5, 2], torch.log(torch.tensor([30 / 32, 18 / 20])))
    assert torch.allclose(t.txy[0, 0, 0, 7], torch.tensor([59.5 / 8 - 7, 4.5 / 8]))


def test_the_larger_box_wins_a_shared_cell_and_anchor():
    # all centred at (7, 7), cell (0, 0): 10×10 and 8×8 want the 8×8 anchor, where the
    # larger wins whatever the order; 13×13 takes the 16×16 one
    for rows in ([[1, 2, 2, 12, 12], [4, 1, 1, 14, 14], [2, 3, 3, 11, 11]],
                 [[2, 3, 3, 11, 11], [4, 1, 1, 14, 14], [1, 2, 2, 12, 12]]):
        t = encode_targets(_labels([rows]), ANCHORS, GRID, IMAGE, K)
        assert t.positive.sum() == 2
        assert t.label[0, 0, 0, 0] == 1 and t.label[0, 1, 0, 0] == 4
        assert torch.allclose(t.twh[0, 0, 0, 0], torch.log(torch.tensor([10 / 8, 10 / 8])))
    # equal sizes: the later row wins
    y = _labels([[[1, 0, 0, 10, 10], [2, 1, 1, 11, 11]]])
    t = encode_targets(y, ANCHORS, GRID, IMAGE, K)
    assert t.positive.sum() == 1 and t.label[0, 0, 0, 0] == 2


def test_decoding_the_targets_gives_the_true_boxes_back():
    torch.manual_seed(0)
    rows = []
    for _ in range(6):
        boxes = []
        # centres in distinct cells, so that no box loses its cell to another
        for cell in torch.randperm(64)[:int(torch.randint(0, 5, ()))].tolist():
            w, h = (torch.rand(2) * 28 + 4).tolist()
            cx, cy = ((torch.rand(2) + torch.tensor([cell % 8, cell // 8])) * 8).tolist()
            boxes.append([float(torch.randint(0, K, ())), cx - w / 2, cy - h / 2,
                          cx + w / 2, cy + h / 2])
        rows.append(boxes)
    y = _labels(rows)
    out = _perfect_output(y)
    boxes, objectness, classes = decode(out, ANCHORS, IMAGE, K)
    assert boxes.shape == (6, 3 * 64, 4) and classes.shape == (6, 3 * 64, K)
    for b, truth in enumerate(rows):
        found = objectness[b] > 0.5
        assert int(found.sum()) == len(truth)
        got = sorted(boxes[b][found].tolist())
        want = sorted(r[1:] for r in truth)
        assert torch.allclose(torch.tensor(got).view(-1, 4), torch.tensor(want).view(-1, 4),
                              atol=1e-4)
        assert sorted(classes[b][found].argmax(1).tolist()) == sorted(int(r[0]) for r in truth)
    results = detect(out, ANCHORS, IMAGE, K)
    for (got_boxes, scores, labels), truth in zip(results, rows, strict=True):
        assert len(got_boxes) == len(truth)
        assert (scores > 0.99).all()
        inside = [[max(0.0, min(64.0, v)) for v in r[1:]] for r in truth]  # clipped
        for box, label in zip(got_boxes, labels, strict=True):
            match = [r for r, c in zip(truth, inside, strict=True)
                     if torch.allclose(torch.tensor(c), box, atol=1e-3)]
            assert match and int(match[0][0]) == int(label)


def test_detect_keeps_the_best_of_overlapping_boxes_of_one_class():
    y = _labels([[[2, 10, 10, 30, 30]]])
    out = _perfect_output(y)
    p = out.view(1, 3, 5 + K, 8, 8)
    # a second, weaker box of the same class one cell to the right, nearly the same box
    p[0, 1, 0, 2, 3] = p[0, 1, 0, 2, 2] - 2.0   # centre x one cell back (sigmoid logit)
    p[0, 1, 1:4, 2, 3] = p[0, 1, 1:4, 2, 2]
    p[0, 1, 4, 2, 3] = 2.0
    p[0, 1, 5:, 2, 3] = p[0, 1, 5:, 2, 2]
    (boxes, scores, labels), = detect(out, ANCHORS, IMAGE, K, score_threshold=0.1)
    assert len(boxes) == 1 and labels.tolist() == [2] and scores[0] > 0.99
    (boxes, _, _), = detect(out, ANCHORS, IMAGE, K, score_threshold=0.1, iou_threshold=0.99)
    assert len(boxes) == 2


def test_boxes_are_clipped_and_score_threshold_applies():
    out = torch.zeros(1, 30, 8, 8)
    out[0, [4, 14, 24]] = -10.0   # no object anywhere ...
    out[0, 22:24, 0, 0] = 5.0     # ... but a huge box (anchor 2 · e⁵) at the corner
    out[0, 24, 0, 0] = 10.0
    out[0, 28, 0, 0] = 10.0       # of class 3
    (boxes, scores, labels), = detect(out, ANCHORS, IMAGE, K, score_threshold=0.1)
    assert labels.tolist() == [3] and scores[0] > 0.99
    assert boxes.tolist() == [[0.0, 0.0, 64.0, 64.0]]
    out[0, 28, 0, 0] = 0.0        # every class equally likely: scores of 1/K each
    (boxes, scores, labels), = detect(out, ANCHORS, IMAGE, K, score_threshold=0.1)
    assert sorted(labels.tolist()) == list(range(K))  # a box may stand for each class
    assert torch.allclose(scores, torch.full((K,), 1 / K), atol=1e-3)
    (boxes, _, _), = detect(out, ANCHORS, IMAGE, K, score_threshold=0.5)
    assert len(boxes) == 0
    (boxes, _, _), = detect(out, ANCHORS, IMAGE, K, score_threshold=0.1, max_detections=2)
    assert len(boxes) == 2


def test_loss_is_finite_without_boxes_and_under_bf16_autocast():
    loss_fn = YoloLoss(ANCHORS, IMAGE, K)
    out = torch.randn(3, 30, 8, 8, requires_grad=True)
    empty = _labels([[], [], []])
    loss = loss_fn(out, empty)
    loss.backward()
    assert math.isfinite(float(loss.detach())) and torch.isfinite(out.grad).all()
    y = _labels([[[0, 1, 1, 20, 20]], [], [[4, 30, 30, 60, 50], [1, 2, 40, 10, 60]]])
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = loss_fn(out.bfloat16(), y)
    assert loss.dtype == torch.float32 and math.isfinite(float(loss.detach()))
    # an image's loss does not depend on the others of its batch; "sum" adds them up
    single = loss_fn(out[2:].detach(), y[2:, :2])
    assert torch.allclose(loss_fn.per_image(out.detach(), y)[2], single)
    loss_fn.reduction = "sum"
    assert torch.allclose(loss_fn(out.detach(), y),
                          loss_fn.per_image(out.detach(), y).sum())


def test_the_perfect_output_has_a_small_loss_and_finds_every_box():
    y = _labels([[[0, 1, 1, 20, 20]], [[4, 30, 30, 60, 50], [1, 2, 40, 10, 60]]])
    loss_fn = YoloLoss(ANCHORS, IMAGE, K)
    perfect = _perfect_output(y)
    # what a perfect prediction still costs: the BCE of sigmoid(tx) against its own
    # target, which is not 0 for targets inside (0, 1)
    t = encode_targets(y, ANCHORS, GRID, IMAGE, K)
    floor = torch.nn.functional.binary_cross_entropy(t.txy, t.txy, reduction="none")
    floor = (floor.sum(-1) * t.scale * t.positive).flatten(1).sum(1).mean() * 5
    assert float(loss_fn(perfect, y)) == pytest.approx(float(floor), abs=0.05)
    assert float(loss_fn(torch.zeros_like(perfect), y)) > float(floor) + 10
    assert positives_found(perfect, y, ANCHORS, IMAGE, K).tolist() == [3, 3]
    assert positives_found(-perfect, y, ANCHORS, IMAGE, K).tolist() == [0, 3]


def test_the_trainers_found_figure_reuses_the_losss_assignment_and_agrees():
    from engine.tasks.detection import Detection

    y = _labels([[[0, 1, 1, 20, 20]], [[4, 30, 30, 60, 50], [1, 2, 40, 10, 60]]])
    task = Detection([str(i) for i in range(K)], ANCHORS.tolist(), IMAGE)
    perfect = _perfect_output(y)
    loss_fn = task.criterion(None)
    loss_fn(perfect, y)
    assert loss_fn.last_targets is not None and loss_fn.last_targets[0] is y
    assert task.hits(perfect, y).tolist() == [3, 3]
    loss_fn(-perfect, y)
    assert task.hits(-perfect, y).tolist() == [0, 3]
    # other labels than the loss's last ones are encoded afresh
    other = y.clone()
    other[1, 1, 0] = -1
    assert task.hits(perfect, other).tolist() == [2, 2]


def test_a_tiny_network_overfits_one_batch():
    torch.manual_seed(0)
    x = torch.rand(4, 1, 64, 64)
    y = _labels([[[0, 4, 4, 20, 24]], [[1, 30, 10, 50, 30], [2, 5, 40, 30, 60]], [],
                 [[4, 10, 10, 50, 50]]])
    net = nn.Sequential(nn.Conv2d(1, 8, 3, 2, 1), nn.ReLU(), nn.Conv2d(8, 16, 3, 2, 1),
                        nn.ReLU(), nn.Conv2d(16, 16, 3, 2, 1), nn.ReLU(),
                        nn.Conv2d(16, 30, 1))
    loss_fn = YoloLoss(ANCHORS, IMAGE, K)
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    losses = []
    for _ in range(60):
        loss = loss_fn(net(x), y)
        opt.zero_grad()
        loss.backward()
        assert all(torch.isfinite(p.grad).all() for p in net.parameters())
        opt.step()
        losses.append(float(loss))
    assert losses[-1] < 0.3 * losses[0]
