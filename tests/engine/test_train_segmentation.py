"""Training a segmentation design (SPEC §7) headless: per-pixel loss, mIoU that rises,
the metrics.csv columns, a checkpoint that says how to use the model, and designs that
do not fit the data refused before training."""

from __future__ import annotations

import csv
import io

import numpy as np
import pytest
import torch
from data_fixtures import squares_dataset
from graph_builders import build

from designer.progress import ProgressPrinter
from engine import Graph, compile_graph
from engine.checkpoint import load_checkpoint
from engine.data import Dataset, ImageSet
from engine.tasks import segmentation_metrics
from engine.train import Trainer
from engine.train_config import TrainConfig
from engine.train_events import DoneEvent, EpochEvent, FailedEvent, ReadyEvent, StepEvent

torch.set_num_threads(1)
CLASSES = ["background", "square"]


def segmentation_set(classes=CLASSES) -> Dataset:
    return squares_dataset(96, 32, tuple(classes))


def fcn(classes: int = 2, size: int = 16, stride: int = 1) -> Graph:
    """Conv2d → ReLU → Conv2d → ReLU → 1×1 Conv2d with K channels → segmentation Output."""
    nodes = [("x", "Input", {"channels": 1, "height": size, "width": size}),
             ("c1", "Conv2d", {"out_channels": 8, "padding": 1, "stride": stride}),
             ("r1", "Activation", {}),
             ("c2", "Conv2d", {"out_channels": 8, "padding": 1}),
             ("r2", "Activation", {}),
             ("score", "Conv2d", {"out_channels": classes, "kernel_size": 1}),
             ("out", "Output", {"task": "segmentation"})]
    ids = [n[0] for n in nodes]
    return build(nodes, list(zip(ids, ids[1:], strict=False)), "fcn")


@pytest.fixture(scope="module")
def data() -> Dataset:
    return segmentation_set()


@pytest.fixture(scope="module")
def trained(data, tmp_path_factory):
    out = tmp_path_factory.mktemp("seg")
    events: list = []
    cfg = TrainConfig(epochs=4, batch_size=16, optimizer="adam", lr=0.01, device="cpu",
                      crop_padding=2, hflip=True)
    trainer = Trainer(fcn(), cfg, callback=events.append, dataset=data, out_dir=out,
                      report_interval=0)
    return trainer, trainer.run(), events, out


def test_segmentation_learns_and_miou_rises_clearly_above_chance(trained):
    _, result, events, _ = trained
    assert isinstance(result, DoneEvent), getattr(result, "reason", "")
    ready = next(e for e in events if isinstance(e, ReadyEvent))
    assert ready.task == "segmentation"
    epochs = [e for e in events if isinstance(e, EpochEvent)]
    assert [e.task for e in epochs] == ["segmentation"] * 4
    # chance: everything background gives mIoU ≈ 0.43 here (IoU 0.86 and 0)
    assert epochs[0].miou is not None and epochs[-1].miou > 0.8
    assert epochs[-1].train_loss < epochs[0].train_loss
    assert epochs[-1].iou.shape == (2,) and np.all(epochs[-1].iou > 0.6)
    # the confusion matrix counts every validation pixel (none ignored in this set)
    assert epochs[-1].confusion.shape == (2, 2) and epochs[-1].confusion.sum() == 32 * 16 * 16
    steps = [e for e in events if isinstance(e, StepEvent)]
    assert all(0.0 <= s.accuracy <= 1.0 for s in steps)


def test_the_reported_miou_is_the_one_of_the_whole_validation_set(trained, data):
    """Recomputed independently from the saved weights: one confusion matrix over all
    validation pixels, not a mean of per-batch values."""
    trainer, _, events, out = trained
    last = [e for e in events if isinstance(e, EpochEvent)][-1]
    model = compile_graph(fcn())
    model.load_state_dict(load_checkpoint(out / "model.pt")["state_dict"])
    model.eval()
    x = (data.val.x.float() / 255 - data.mean[0]) / data.std[0]
    with torch.no_grad():
        predicted = model(x).argmax(1).numpy().ravel()
    truth = data.val.y.numpy().ravel().astype(np.int64)
    confusion = np.bincount(truth * 2 + predicted, minlength=4).reshape(2, 2)
    np.testing.assert_array_equal(last.confusion, confusion)
    accuracy, iou, miou = segmentation_metrics(confusion)
    assert last.miou == pytest.approx(miou) and last.val_accuracy == pytest.approx(accuracy)
    assert last.metrics["val_iou_square"] == pytest.approx(iou[1])


def test_metrics_csv_has_the_spec_columns_and_the_checkpoint_says_how_to_use_the_model(
        trained, data):
    _, result, _, out = trained
    with open(out / "metrics.csv", newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert list(rows[0]) == ["epoch", "train_loss", "train_pixel_accuracy", "val_loss",
                             "val_pixel_accuracy", "val_miou", "val_iou_background",
                             "val_iou_square", "seconds", "lr"]
    assert [int(r["epoch"]) for r in rows] == [1, 2, 3, 4]
    assert float(rows[-1]["val_miou"]) == pytest.approx(result.metrics[-1]["val_miou"])
    # what the command line and the Training panel say at the end
    miou, pixel = float(rows[-1]["val_miou"]), float(rows[-1]["val_pixel_accuracy"])
    assert result.summary() == (f"validation mIoU {miou:.3f}, pixel accuracy "
                                f"{100 * pixel:.1f}%")
    saved = torch.load(out / "model.pt", weights_only=True)
    assert saved["task"] == "segmentation" and saved["classes"] == CLASSES
    assert saved["preprocess"] == {"channels": 1, "size": [16, 16], "mean": list(data.mean),
                                   "std": list(data.std)}


def test_the_progress_lines_show_miou_and_pixel_accuracy(trained):
    _, _, events, _ = trained
    stream = io.StringIO()
    printer = ProgressPrinter(stream)
    for e in events:
        printer(e)
    lines = [line for line in stream.getvalue().splitlines() if line.startswith("epoch ")]
    assert len(lines) == 4
    last = [e for e in events if isinstance(e, EpochEvent)][-1]
    assert f"mIoU {last.miou:.3f}" in lines[-1] and "px acc" in lines[-1]
    assert " acc " not in lines[-1].replace("px acc", "")


def refusal(graph: Graph, data: Dataset) -> str:
    events: list = []
    result = Trainer(graph, TrainConfig(epochs=1, batch_size=8, device="cpu"),
                     callback=events.append, dataset=data).run()
    assert isinstance(result, FailedEvent) and result.kind == "data", result
    assert not any(isinstance(e, StepEvent) for e in events)
    return result.reason


def test_a_class_count_mismatch_is_refused_naming_both_numbers_and_the_block(data):
    reason = refusal(fcn(classes=3), data)
    assert "3 class maps" in reason and "2 classes" in reason
    assert "set score's out_channels to 2" in reason


def test_a_size_mismatch_is_refused_naming_both_sizes_and_the_block(data):
    reason = refusal(fcn(stride=2), data)
    assert "8×8" in reason and "16×16" in reason and "'score'" in reason


def test_a_classifier_on_segmentation_data_is_refused_naming_the_output(data):
    nodes = [("x", "Input", {"channels": 1, "height": 16, "width": 16}),
             ("flat", "Flatten", {}), ("fc", "Linear", {"out_features": 2}),
             ("out", "Output", {})]
    graph = build(nodes, [("x", "flat"), ("flat", "fc"), ("fc", "out")])
    reason = refusal(graph, data)
    assert "'out' is set to classification" in reason and "segmentation dataset" in reason


def test_mask_labels_beyond_the_classes_are_refused_with_the_value():
    data = segmentation_set()
    y = data.val.y.clone()
    y[0, 0, 0] = 7
    data.val = ImageSet(data.val.x, y)
    reason = refusal(fcn(), data)
    assert "validation labels" in reason and "class 7" in reason and "2 classes" in reason
