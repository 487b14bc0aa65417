"""Training a detection design (SPEC §7) headless: the YOLO loss through the trainer,
the mAP columns of metrics.csv, live predictions and the worst-images gallery, designs
and labels that do not fit refused with the fix, the Output's anchors in the file,
``convas predict``'s boxes and the throughput benchmark."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from graph_builders import build
from PIL import Image

from designer.cli import summary
from engine import Graph, analyze
from engine.checkpoint import load_checkpoint
from engine.data import Dataset, DatasetError, ImageSet, load_dataset
from engine.predict import load_predictor, predict, scale_detections
from engine.train import Trainer, check_fit
from engine.train_config import TrainConfig
from engine.train_events import DoneEvent, EpochEvent, PredictionEvent, ReadyEvent

torch.set_num_threads(1)
ROOT = Path(__file__).resolve().parents[2]
ANCHORS = [[6.0, 6.0], [9.0, 9.0], [13.0, 13.0]]


def detector(head: int = 30, anchors=ANCHORS, size: int = 32) -> Graph:
    """Conv → ReLU → pool ×2, one more pool (a 4×4 grid of 8 px cells at 32×32), a 1×1
    head of ``head`` channels and a detection Output."""
    nodes = [("x", "Input", {"channels": 1, "height": size, "width": size}),
             ("c1", "Conv2d", {"out_channels": 8}), ("r1", "Activation", {}),
             ("p1", "MaxPool2d", {}),
             ("c2", "Conv2d", {"out_channels": 16}), ("r2", "Activation", {}),
             ("p2", "MaxPool2d", {}), ("p3", "MaxPool2d", {}),
             ("head", "Conv2d", {"out_channels": head, "kernel_size": 1}),
             ("out", "Output", {"task": "detection", "anchors": anchors})]
    ids = [n[0] for n in nodes]
    return build(nodes, list(zip(ids, ids[1:], strict=False)), "tiny-yolo")


@pytest.fixture(scope="module")
def data() -> Dataset:
    return load_dataset("shapes-det", val_fraction=0.25, options={"count": 64, "size": 32})


@pytest.fixture(scope="module")
def trained(data, tmp_path_factory):
    out = tmp_path_factory.mktemp("det")
    events: list = []
    cfg = TrainConfig(epochs=2, batch_size=16, optimizer="adam", lr=0.01, device="cpu",
                      hflip=True, crop_padding=2, probe_every=2)
    trainer = Trainer(detector(), cfg, callback=events.append, dataset=data, out_dir=out,
                      report_interval=0)
    return trainer, trainer.run(), events, out


def test_one_run_writes_the_map_columns_and_a_checkpoint(trained, data):
    trainer, result, events, out = trained
    assert isinstance(result, DoneEvent), getattr(result, "reason", "")
    with open(out / "metrics.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert list(rows[0]) == ["epoch", "train_loss", "train_found", "val_loss", "val_map50",
                             "val_map", "seconds", "lr"]
    assert len(rows) == 2
    for row in rows:
        assert float(row["train_loss"]) > 0 and float(row["val_loss"]) > 0
        assert 0 <= float(row["val_map"]) <= float(row["val_map50"]) <= 1
        assert 0 <= float(row["train_found"]) <= 1
    epochs = [e for e in events if isinstance(e, EpochEvent)]
    assert epochs[-1].map50 == pytest.approx(float(rows[-1]["val_map50"]))
    assert epochs[-1].val_accuracy == epochs[-1].map50 and epochs[-1].confusion is None
    assert "mAP@0.5" in result.summary()
    saved = load_checkpoint(out / "model.pt")
    assert saved["task"] == "detection" and saved["classes"] == list(data.classes)


def test_the_run_reports_true_boxes_live_boxes_and_the_worst_images(trained, data):
    trainer, _, events, _ = trained
    ready = next(e for e in events if isinstance(e, ReadyEvent))
    assert ready.task == "detection"
    assert ready.probe_targets.shape == (8, data.val.y.shape[1], 5)
    np.testing.assert_array_equal(ready.probe_targets, data.val.y[:8].numpy())
    live = [e for e in events if isinstance(e, PredictionEvent)]
    assert live and live[-1].class_map is None
    last = live[-1]
    assert last.boxes.shape == (len(last.scores), 4) and len(last.labels) == len(last.scores)
    assert (last.scores >= 0.25).all()
    # an image's errors, worst first: missed + false boxes never grow along the gallery
    epoch = [e for e in events if isinstance(e, EpochEvent)][-1]
    assert epoch.worst_images is not None
    totals = epoch.worst_errors.sum(1)
    assert (np.diff(totals) <= 0).all() and totals[-1] > 0
    assert len(epoch.worst_true_boxes) == len(epoch.worst_detections) == len(totals)
    first = epoch.worst_images[0]
    index = next(i for i in range(len(data.val)) if np.array_equal(data.val.x[i].numpy(), first))
    truth = data.val.y[index].numpy()
    np.testing.assert_array_equal(epoch.worst_true_boxes[0], truth[truth[:, 0] >= 0])
    assert epoch.worst_detections[0].shape[1] == 6


def test_a_head_with_the_wrong_channels_is_refused_with_the_fix(data):
    # 31 channels cannot be 3 anchors × anything: the analysis says so on the Output
    error = analyze(detector(head=31)).nodes["out"].error
    assert error is not None and "3 anchors × (5 + classes)" in error.message
    graph = detector(head=33)  # 3 × (5 + 6): a head for six classes, the data has five
    with pytest.raises(DatasetError) as caught:
        check_fit(graph, analyze(graph), data)
    message = str(caught.value)
    assert "33 channels" in message
    assert "set out_channels of 'head' to 30 = 3 anchors × (5 + 5 classes)" in message
    # two anchors need 20 channels: the count follows the Output's anchors
    graph = detector(head=30, anchors=ANCHORS[:2])
    with pytest.raises(DatasetError, match="'head' to 20 = 2 anchors × "):
        check_fit(graph, analyze(graph), data)
    check_fit(detector(), analyze(detector()), data)  # fits
    # a classifier on boxes is refused naming the task
    classifier = build([("x", "Input", {"channels": 1, "height": 32, "width": 32}),
                        ("f", "Flatten", {}), ("fc", "Linear", {"out_features": 5}),
                        ("out", "Output", {})], [("x", "f"), ("f", "fc"), ("fc", "out")])
    with pytest.raises(DatasetError, match="set the task of the Output 'out' to detection"):
        check_fit(classifier, analyze(classifier), data)


def test_labels_the_loss_cannot_take_are_refused(data):
    y = data.train.y.clone()
    y[0, 0, 0] = 7
    bad = Dataset(data.name, ImageSet(data.train.x, y), data.val, data.classes, data.mean,
                  data.std, task="detection")
    with pytest.raises(DatasetError, match="the training labels hold the class 7 but there "
                                           "are 5 classes"):
        check_fit(detector(), analyze(detector()), bad)
    y = data.train.y.clone()
    y[1, 0, 2] = float("nan")
    bad = Dataset(data.name, ImageSet(data.train.x, y), data.val, data.classes, data.mean,
                  data.std, task="detection")
    with pytest.raises(DatasetError, match="not a finite number"):
        check_fit(detector(), analyze(detector()), bad)


def test_the_anchors_round_trip_through_the_file_and_bad_ones_are_named(tmp_path):
    graph = detector(anchors=[[5, 7.5], [12, 10]], head=20)
    path = tmp_path / "d.convas.json"
    graph.save(path)
    raw = json.loads(path.read_text(encoding="utf-8"))
    out = next(n for n in raw["nodes"] if n["id"] == "out")
    assert out["params"] == {"task": "detection", "anchors": [[5, 7.5], [12, 10]]}
    loaded = Graph.load(path)
    report = analyze(loaded)
    assert report.errors == []
    assert report.nodes["out"].resolved["anchors"] == ((5.0, 7.5), (12.0, 10.0))
    loaded.set_param("out", "anchors", [[5, -1]])
    error = analyze(loaded).nodes["out"].error
    assert error is not None and "positive width and height" in error.message
    loaded.set_param("out", "anchors", "8,8")
    assert "[w, h] pairs" in analyze(loaded).nodes["out"].error.message


def test_predict_gives_boxes_in_the_images_own_pixels(trained, tmp_path):
    trainer, _, _, out = trained
    image = trainer.dataset.val.x[0, 0].numpy()
    Image.fromarray(image).save(tmp_path / "small.png")
    Image.fromarray(np.repeat(np.repeat(image, 3, 0), 2, 1)).save(tmp_path / "big.png")
    predictor = load_predictor(trainer.graph, out / "model.pt")
    small, big = predict(predictor, [tmp_path / "small.png", tmp_path / "big.png"],
                         score_threshold=0.01)
    assert set(small) == {"image", "detections"} and small["detections"]
    for a in small["detections"]:
        assert a["class"] == trainer.dataset.classes[a["index"]] and a["score"] >= 0.01
        x1, y1, x2, y2 = a["box"]
        assert 0 <= x1 <= x2 <= 32 and 0 <= y1 <= y2 <= 32
    # the big image's boxes are what the network found on it (resized to 32×32), in
    # its own 64×96 pixels
    x, own = predictor.preprocess(tmp_path / "big.png")
    assert own == (64, 96)
    with torch.no_grad():
        seen = trainer.task.decode(predictor.model(x[None]), trainer.dataset.classes)[0]
    seen = [d for d in seen["detections"] if d["score"] >= 0.01]
    assert len(big["detections"]) == len(seen) > 0
    for b, d in zip(big["detections"], seen, strict=True):
        x1, y1, x2, y2 = d["box"]
        assert b["box"] == pytest.approx([x1 * 2, y1 * 3, x2 * 2, y2 * 3], abs=0.01)
        assert b["index"] == d["index"] and b["score"] == pytest.approx(d["score"])
    default = predict(predictor, [tmp_path / "small.png"])[0]["detections"]
    assert default == [d for d in small["detections"] if d["score"] >= 0.25]
    scaled = scale_detections([{"score": 0.5, "box": [8, 4, 16, 12]},
                               {"score": 0.1, "box": [0, 0, 1, 1]}], (32, 64), (128, 16), 0.25)
    assert scaled == [{"score": 0.5, "box": [16.0, 2.0, 32.0, 6.0]}]


def test_weights_are_refused_for_anchors_other_than_those_they_were_trained_with(
        trained, tmp_path):
    """Boxes are predicted relative to the anchors: after a new anchor fit the old
    weights would give wrong boxes without a sign, so predict and export say so."""
    from engine.export import ExportError, export_design
    from engine.predict import PredictError
    from engine.tasks import trained_anchors

    trainer, _, _, out = trained
    checkpoint = load_checkpoint(out / "model.pt")
    assert trained_anchors(checkpoint) == ANCHORS
    load_predictor(trainer.graph, out / "model.pt")          # the same anchors: fine
    refitted = Graph.from_dict(trainer.graph.to_dict())
    refitted.set_param("out", "anchors", [[5, 5], [9, 9], [14, 14]])
    with pytest.raises(PredictError, match=r"trained with the anchors 6,6; 9,9; 13,13 .* "
                                           r"now has 5,5; 9,9; 14,14"):
        load_predictor(refitted, out / "model.pt")
    with pytest.raises(ExportError, match="train the design again"):
        export_design(refitted, tmp_path / "d.onnx", weights=out / "model.pt")
    result = export_design(refitted, tmp_path / "d.py", weights=out / "model.pt",
                           if_unfit="untrained")
    assert "anchors" in result.untrained_because and not result.weights_from


def test_summary_prints_the_anchors_and_their_fit(tmp_path):
    path = tmp_path / "d.convas.json"
    detector().save(path)
    out, err = io.StringIO(), io.StringIO()
    assert summary(str(path), out=out, err=err) == 0
    assert "Anchors:          3 (6×6, 9×9, 13×13)" in out.getvalue()
    out = io.StringIO()
    assert summary(str(path), out=out, err=err, dataset="shapes-det") == 0
    fit = out.getvalue().split("Anchor fit:")[1]
    assert "mean best IoU" in fit and "shapes-det" in fit
    assert summary(str(path), out=io.StringIO(), err=err, dataset="digits") == 1
    assert "has no boxes" in err.getvalue()


def test_the_throughput_benchmark_runs_the_yolo_template():
    run = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "train_throughput.py"), "--template",
         "yolo_shapes", "--count", "48", "--epochs", "2", "--batch", "16", "--size", "32"],
        capture_output=True, text=True, cwd=ROOT, timeout=300,
        env={"OMP_NUM_THREADS": "1", "PATH": ""})
    assert run.returncode == 0, run.stderr
    assert "yolo_shapes on shapes-det (48 images 1×32×32)" in run.stdout
    assert "convas/hand-written throughput" in run.stdout
