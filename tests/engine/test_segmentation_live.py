"""What a segmentation run shows live (SPEC §7, issue 10): the probe images' true masks
at the start, the predicted mask of the probe image at each probe (with or without
feature maps), and after each epoch the validation images with the lowest IoU. Every
value is checked against the saved model, recomputed independently in numpy."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch
from data_fixtures import squares_dataset
from graph_builders import build
from test_train_segmentation import fcn

from engine import compile_graph
from engine.checkpoint import load_checkpoint
from engine.data import Dataset, ImageSet
from engine.train import PROBE_IMAGES, Trainer
from engine.train_config import TrainConfig
from engine.train_events import (
    DoneEvent,
    EpochEvent,
    FeatureMapEvent,
    PredictionEvent,
    ReadyEvent,
    StepEvent,
)

torch.set_num_threads(1)
PROBE_EVERY = 3
PROBED = 5      # the probe image shown (set_probe_index), not the first one
WORST = 16


def data_with_ignored_pixels() -> Dataset:
    """The squares set, with a top row of 255 in every third validation mask and one
    validation mask ignored entirely (an image with no IoU of its own)."""
    data = squares_dataset(64, 40)
    y = data.val.y.clone()
    y[::3, 0, :] = 255
    y[7] = 255
    data.val = ImageSet(data.val.x, y)
    return data


@pytest.fixture(scope="module")
def data() -> Dataset:
    return data_with_ignored_pixels()


@pytest.fixture(scope="module")
def run(data, tmp_path_factory):
    """Three epochs; feature maps of c1 are asked for from the second epoch on, so
    probes run both with and without them."""
    out = tmp_path_factory.mktemp("live")
    events: list = []

    def callback(event):
        events.append(event)
        if isinstance(event, EpochEvent) and event.epoch == 1:
            trainer.set_probe_nodes(["c1"])

    cfg = TrainConfig(epochs=3, batch_size=16, optimizer="adam", lr=0.01, device="cpu",
                      probe_every=PROBE_EVERY)
    trainer = Trainer(fcn(), cfg, callback=callback, dataset=data, out_dir=out,
                      report_interval=0)
    trainer.set_probe_index(PROBED)
    result = trainer.run()
    assert isinstance(result, DoneEvent), getattr(result, "reason", "")
    model = compile_graph(fcn())
    model.load_state_dict(load_checkpoint(out / "model.pt")["state_dict"])
    return events, model.eval()


def logits(model, data: Dataset, x: torch.Tensor) -> torch.Tensor:
    """The saved model's output, normalised by hand as the trainer does (one channel)."""
    with torch.no_grad():
        return model((x.float() / 255 - data.mean[0]) / data.std[0])


def image_miou(true: np.ndarray, predicted: np.ndarray, k: int = 2) -> float:
    """One image's mIoU over the classes in its true or predicted mask, 255 left out."""
    labelled = true != 255
    t, p = true[labelled].astype(np.int64), predicted[labelled].astype(np.int64)
    ious = []
    for c in range(k):
        union = np.sum((t == c) | (p == c))
        if union:
            ious.append(np.sum((t == c) & (p == c)) / union)
    return float(np.mean(ious)) if ious else float("nan")


def test_ready_carries_the_true_masks_of_the_probe_images(run, data):
    events, _ = run
    ready = next(e for e in events if isinstance(e, ReadyEvent))
    assert ready.probe_targets.dtype == np.uint8
    assert ready.probe_targets.shape == (PROBE_IMAGES, 16, 16)
    np.testing.assert_array_equal(ready.probe_targets, data.val.y[:PROBE_IMAGES].numpy())
    assert (ready.probe_targets[7] == 255).all()  # ignore survives as 255


def test_a_prediction_at_every_probe_with_and_without_feature_maps(run):
    events, _ = run
    predictions = [e for e in events if isinstance(e, PredictionEvent)]
    steps = [e.global_step for e in events if isinstance(e, StepEvent)]
    per_epoch = len(steps) // 3
    expected = sorted({s for s in steps if s % PROBE_EVERY == 0}
                      | {per_epoch * e for e in (1, 2, 3)})
    assert [p.global_step for p in predictions] == expected
    assert {p.probe_index for p in predictions} == {PROBED}
    for p in predictions:
        assert p.class_map.dtype == np.uint8 and p.class_map.shape == (16, 16)
        assert set(np.unique(p.class_map)) <= {0, 1}
        assert p.confidence.dtype == np.float32 and p.confidence.shape == (16, 16)
        assert p.confidence.min() >= 0.5 - 1e-6 and p.confidence.max() <= 1 + 1e-6
    # asked for at the first EpochEvent, c1's maps came with every later probe (the end
    # of epoch 1's included) and of the same step; the earlier probes gave none
    maps = {e.global_step for e in events if isinstance(e, FeatureMapEvent)}
    assert maps == {p.global_step for p in predictions if p.global_step >= per_epoch}
    assert any(p.global_step < per_epoch for p in predictions)


def test_the_last_prediction_is_the_saved_models_argmax_for_the_probe_image(run, data):
    events, model = run
    last = [e for e in events if isinstance(e, PredictionEvent)][-1]
    out = logits(model, data, data.val.x[PROBED:PROBED + 1])
    np.testing.assert_array_equal(last.class_map, out.argmax(1)[0].numpy())
    np.testing.assert_allclose(last.confidence, out.softmax(1).amax(1)[0].numpy(),
                               atol=1e-5)
    assert 0 < last.class_map.sum() < last.class_map.size  # it found the square, not all


def test_the_worst_images_are_those_of_lowest_iou_lowest_first(run, data):
    events, model = run
    epochs = [e for e in events if isinstance(e, EpochEvent)]
    assert all(e.worst_iou is not None for e in epochs)
    last = epochs[-1]
    assert last.worst_images.shape == (WORST, 1, 16, 16)
    assert last.worst_true.shape == last.worst_predicted.shape == (WORST, 16, 16)
    assert last.worst_true.dtype == last.worst_predicted.dtype == np.uint8
    assert np.all(np.diff(last.worst_iou) >= 0)
    # each image is found in the validation set by its pixels (noise: all differ)
    val_x = data.val.x.numpy()
    index = [int(np.flatnonzero((val_x == img).all(axis=(1, 2, 3)))[0])
             for img in last.worst_images]
    assert 7 not in index  # no labelled pixel: no IoU, not among the worst
    predicted = logits(model, data, data.val.x).argmax(1).numpy()
    truth = data.val.y.numpy()
    np.testing.assert_array_equal(last.worst_true, truth[index])
    np.testing.assert_array_equal(last.worst_predicted, predicted[index])
    own = [image_miou(t, p) for t, p in zip(last.worst_true, last.worst_predicted,
                                           strict=True)]
    np.testing.assert_allclose(last.worst_iou, own, rtol=1e-5)
    every = sorted(v for v in (image_miou(t, p) for t, p in zip(truth, predicted, strict=True))
                   if not np.isnan(v))
    np.testing.assert_allclose(last.worst_iou, every[:WORST], rtol=1e-5)
    assert every[-1] > last.worst_iou[-1]  # the gallery is not simply every image


def test_the_new_events_cross_the_process_pipe(run):
    """The child process pickles every event; arrays must come back equal."""
    events, _ = run
    prediction = next(e for e in events if isinstance(e, PredictionEvent))
    epoch = next(e for e in events if isinstance(e, EpochEvent))
    ready = next(e for e in events if isinstance(e, ReadyEvent))
    for event, field in ((prediction, "class_map"), (epoch, "worst_predicted"),
                         (ready, "probe_targets")):
        again = pickle.loads(pickle.dumps(event))
        np.testing.assert_array_equal(getattr(again, field), getattr(event, field))


def test_a_classifier_gets_no_live_segmentation_data():
    rng = np.random.default_rng(0)
    x = torch.from_numpy(rng.integers(0, 256, (48, 1, 8, 8), dtype=np.uint8))
    y = torch.arange(48) % 2
    data = Dataset("noise", ImageSet(x[:32], y[:32]), ImageSet(x[32:], y[32:]), ["a", "b"],
                   (0.5,), (0.25,))
    nodes = [("x", "Input", {"channels": 1, "height": 8, "width": 8}),
             ("flat", "Flatten", {}), ("fc", "Linear", {"out_features": 2}),
             ("out", "Output", {})]
    graph = build(nodes, [("x", "flat"), ("flat", "fc"), ("fc", "out")])
    events: list = []
    cfg = TrainConfig(epochs=2, batch_size=8, device="cpu", probe_every=1)
    result = Trainer(graph, cfg, callback=events.append, dataset=data, probe_nodes=["fc"],
                     report_interval=0).run()
    assert isinstance(result, DoneEvent), getattr(result, "reason", "")
    assert next(e for e in events if isinstance(e, ReadyEvent)).probe_targets is None
    assert any(isinstance(e, FeatureMapEvent) for e in events)  # probes did run
    assert not any(isinstance(e, PredictionEvent) for e in events)
    for epoch in (e for e in events if isinstance(e, EpochEvent)):
        assert epoch.worst_images is epoch.worst_true is epoch.worst_predicted is None
        assert epoch.worst_iou is None


def test_the_worst_images_are_kept_across_batches_with_their_own_iou():
    """Hand-made batches: image i predicts class 1 on the first i of its 24 pixels
    (truth: the first 12 are class 1), so each image's IoU is known exactly; the
    worst must be merged across batches, and an image with only ignored pixels is
    left out. The images are the ImageSet's by position."""
    from engine.tasks import get_task

    n, pixels = 30, 24
    truth = torch.zeros(n, 1, pixels, dtype=torch.long)
    truth[:, :, :12] = 1
    truth[4] = 255
    predicted = torch.zeros_like(truth)
    for i in range(n):
        predicted[i, :, :i] = 1
    logits = torch.nn.functional.one_hot(predicted, 2).permute(0, 3, 1, 2).float()
    expected = np.array([image_miou(t.numpy(), p.numpy())
                         for t, p in zip(truth, predicted, strict=True)])
    accumulator = get_task("segmentation", ["bg", "fg"]).accumulator(2, torch.device("cpu"))
    for start in range(0, n, 8):  # batches of 8, the last of 6
        accumulator.add(logits[start:start + 8], truth[start:start + 8])
    source = ImageSet(torch.arange(n, dtype=torch.uint8).view(n, 1, 1, 1).expand(
        n, 1, 1, pixels).contiguous(), truth.to(torch.uint8))
    extras = accumulator.finish(source).extras
    index = extras["worst_images"][:, 0, 0, 0].astype(int)
    ranked = [i for i in np.argsort(expected, kind="stable") if not np.isnan(expected[i])]
    np.testing.assert_allclose(extras["worst_iou"], expected[ranked[:WORST]], rtol=1e-6)
    assert 4 not in index and sorted(index) == sorted(ranked[:WORST])
    np.testing.assert_array_equal(extras["worst_predicted"], predicted[index].numpy())
    np.testing.assert_array_equal(extras["worst_true"], truth[index].numpy())


def test_batches_of_other_sizes_still_count_but_give_no_gallery():
    from engine.tasks import get_task

    accumulator = get_task("segmentation", ["bg", "fg"]).accumulator(2, torch.device("cpu"))
    for width in (6, 4):
        y = torch.ones(1, 2, width, dtype=torch.long)
        accumulator.add(torch.nn.functional.one_hot(y, 2).permute(0, 3, 1, 2).float(), y)
    evaluation = accumulator.finish(ImageSet(torch.zeros(2, 1, 2, 6), torch.zeros(2, 2, 6)))
    assert evaluation.confusion[1, 1] == 20 and evaluation.extras == {}
