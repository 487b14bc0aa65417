"""Train the YOLO template for one epoch from the Training dock, as a person would
(started from briefly pretrained weights, so its boxes score), and check the detection
views: the probe image's boxes drawn in their class colours, one
mAP point per epoch with metrics.csv's values, and the gallery of the validation
images with the most missed and false boxes. Also the dataset preview's boxes."""

from __future__ import annotations

import csv
import re
from pathlib import Path

import numpy as np
import PySide6  # noqa: F401  (Qt before pyqtgraph, always)
import pytest
from dock_helpers import one_epoch_from_dock, pixel

from designer.templates import template_files
from engine import Graph
from engine.data import load_dataset
from engine.train import Trainer
from engine.train_config import TrainConfig
from widgets.detection_view import box_colour, true_rows
from widgets.map_plot import MAP, MAP50

IMAGES = 120          # 96 training and 24 validation images: one short epoch on a CPU


def yolo() -> Graph:
    f = next(f for f in template_files() if f.name == "yolo_shapes.convas.json")
    graph = Graph.loads(f.read_text("utf-8"), f.name)
    graph.training["dataset_options"] = {"count": IMAGES}   # a tiny data set
    return graph


def assert_drawn(view, box, label: int) -> None:
    """The box's left, right and bottom edges, half-way along, are in its class colour
    on the screen (the best box is drawn over the others)."""
    picture = view.pane.grab().toImage()
    rect = view.image_rect()
    h, w = view.image_size()
    sx, sy = rect.width() / w, rect.height() / h
    x1, y1, x2, y2 = (float(v) for v in box)
    for x, y in ((x1, (y1 + y2) / 2), (x2, (y1 + y2) / 2), ((x1 + x2) / 2, y2)):
        px, py = int(rect.x() + x * sx), int(rect.y() + y * sy)
        seen = {pixel(picture, px + dx, py + dy) for dx in (-1, 0, 1) for dy in (-1, 0, 1)}
        assert box_colour(label) in seen, (x, y)


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory) -> Path:
    """The template's weights after about 90 steps on 600 shapes-det images (headless,
    about 15 s): enough for boxes scoring over 0.25, which one epoch of 96 images from
    scratch never gives. The dock's run starts from them (Start from weights)."""
    out = tmp_path_factory.mktemp("yolo-pretrained")
    graph = yolo()
    data = load_dataset("shapes-det", val_fraction=0.2, options={"count": 600})
    config = TrainConfig(epochs=5, batch_size=32, optimizer="adam", lr=0.003, device="cpu")
    result = Trainer(graph, config, dataset=data, out_dir=out, report_interval=0).run()
    assert type(result).__name__ == "DoneEvent", getattr(result, "reason", "")
    return out / "model.pt"


@pytest.fixture
def trained_dock(window, qtbot, pretrained):
    """The dock after one epoch of the detector on a tiny shapes-det, started from the
    pretrained weights, and the predictions the controller delivered."""
    graph = yolo()
    graph.training["init"] = str(pretrained)
    return one_epoch_from_dock(window, qtbot, graph, "shapes-det")


def test_train_the_detector_one_epoch_from_the_dock(trained_dock):
    dock, predictions = trained_dock
    info, live = dock.info, dock.detection
    assert info.task == "detection" and live.active and not dock.segmentation.active
    assert dock.tabs.currentWidget() is live.page                  # selected at the start
    assert dock.tabs.tabText(dock.tabs.indexOf(live.page)) == "Prediction"
    assert "mAP@0.5" in dock.plots.accuracy_label()
    assert not dock.tabs.isTabVisible(dock.tabs.indexOf(dock.confusion))  # none for boxes

    # the probe image's boxes: those of the last prediction, drawn in the class colours
    assert predictions, "no detections were delivered"
    last = predictions[-1]
    view = live.view
    assert view.probe_index() == last.probe_index
    boxes, scores, labels = view.prediction()
    np.testing.assert_array_equal(boxes, last.boxes)
    np.testing.assert_array_equal(scores, last.scores)
    np.testing.assert_array_equal(labels, last.labels)
    truth = true_rows(info.probe_targets[last.probe_index])
    np.testing.assert_array_equal(view.true_boxes(), truth)
    assert f"of {len(truth)} true boxes found" in view.title.text()
    assert [name for name, _ in view.legend_entries()] == list(info.classes)
    # the run's own boxes, from the trainer's live predictions, drawn on the probe
    assert any(p.boxes is not None and len(p.boxes) for p in predictions), \
        "no box scored 0.25 in any live prediction"
    assert (scores >= 0.25).all()
    if len(boxes):
        assert_drawn(view, boxes[0], labels[0])
    else:   # the last probe found nothing: the one before that did is shown instead
        shown = next(p for p in reversed(predictions) if len(p.boxes))
        dock.controller.prediction.emit(shown)
        assert_drawn(view, shown.boxes[0], int(shown.labels[0]))

    # the mAP curves: one point for the epoch, metrics.csv's values
    with (dock.checkpoint.parent / "metrics.csv").open(newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 1
    for name, column in ((MAP50, "val_map50"), (MAP, "val_map")):
        x, y = live.map.curve_data(name)
        assert x.tolist() == [1.0] and y[0] == pytest.approx(float(rows[0][column]), abs=1e-6)

    # the gallery: the worst validation images, most missed + false first, boxes drawn
    gallery = dock.mistakes
    assert dock.tabs.tabText(dock.tabs.indexOf(gallery)) == "Worst boxes"
    assert 0 < gallery.count() <= min(16, info.val_size)
    counts = [tuple(map(int, re.fullmatch(r"(\d+) missed, (\d+) false", c).groups()))
              for c in gallery.captions()]
    totals = [m + f for m, f in counts]
    assert totals == sorted(totals, reverse=True) and totals[0] > 0
    assert "most missed and false boxes" in gallery.title()
    assert all(t.startswith("True: ") and "Detected: " in t for t in gallery.tooltips())
    thumb = gallery.thumbnail(0)
    colours = {pixel(thumb, x, y) for x in range(thumb.width()) for y in range(thumb.height())}
    assert colours & {box_colour(k) for k in range(len(info.classes))}

    # another probe image after the run: its boxes now come from the checkpoint
    other = (last.probe_index + 1) % len(info.probe_images)
    dock.maps.probe_spin.setValue(other + 1)           # the Feature maps tab's selector
    assert view.probe_index() == other and view.probe_spin.value() == other + 1
    assert view.prediction() is not None
    view.probe_spin.setValue(last.probe_index + 1)     # and the Prediction tab's moves both
    assert dock.maps.probe_spin.value() == last.probe_index + 1
    np.testing.assert_allclose(view.prediction()[0], last.boxes, atol=1e-3)


def test_the_dataset_preview_shows_the_boxes_and_names_their_classes(window, qtbot):
    window.doc.new_from(yolo())
    dock = window.training
    dock.request_preview()
    qtbot.waitUntil(lambda: dock.preview is not None and dock.preview.source == "shapes-det",
                    timeout=60_000)
    preview = dock.preview
    assert preview.task == "detection" and preview.masks is None
    assert preview.boxes.shape[0] == len(preview.images) and preview.boxes.shape[2] == 5
    gallery = dock.panel.preview
    assert gallery.count() == len(preview.images)
    classes = list(preview.classes)
    for caption, rows in zip(gallery.captions(), preview.boxes, strict=True):
        named = {part.split(" ×")[0] for part in caption.split(" + ")}
        assert named == {classes[int(c)] for c in true_rows(rows)[:, 0]}, caption
    thumb = gallery.thumbnail(0)
    colours = {pixel(thumb, x, y) for x in range(thumb.width()) for y in range(thumb.height())}
    first = {box_colour(int(c)) for c in true_rows(preview.boxes[0])[:, 0]}
    assert colours & first
