"""Train the U-Net template for one epoch from the Training dock, as a person would, and
check the segmentation views: the predicted mask overlaid in the class colours, one
IoU point per class and epoch with metrics.csv's values, the pixel confusion matrix,
and the worst-IoU gallery."""

from __future__ import annotations

import csv
import math

import numpy as np
import PySide6  # noqa: F401  (Qt before pyqtgraph, always)
import pytest
from dock_helpers import one_epoch_from_dock, pixel

from designer.templates import template_files
from engine import Graph
from widgets.gallery import to_rgb8
from widgets.iou_plot import MIOU
from widgets.segmentation import class_colours, overlay

IMAGES = 120          # 96 training and 24 validation images: one short epoch on a CPU


def unet():
    f = next(f for f in template_files() if f.name == "unet_shapes.convas.json")
    return Graph.loads(f.read_text("utf-8"), f.name)


@pytest.fixture
def trained_dock(window, qtbot):
    """The dock after one epoch of the U-Net on a tiny shapes-seg, and the predicted
    masks the controller delivered."""
    graph = unet()
    graph.training["dataset_options"] = {"count": IMAGES}   # a tiny data set
    return one_epoch_from_dock(window, qtbot, graph, "shapes-seg")


def test_train_the_unet_one_epoch_from_the_dock(trained_dock):
    dock, predictions = trained_dock
    info = dock.info
    live = dock.segmentation
    assert info.task == "segmentation" and live.active
    assert dock.tabs.currentWidget() is live.page                  # selected at the start
    assert dock.tabs.tabText(dock.tabs.indexOf(live.page)) == "Prediction"
    assert dock.plots.accuracy_label() == "pixel accuracy"

    # the overlay: the last predicted mask, each pixel of a class in that class's colour
    assert predictions, "no predicted mask was delivered"
    last = predictions[-1]
    view = live.view
    assert view.probe_index() == last.probe_index
    np.testing.assert_array_equal(view.predicted_mask(), last.class_map)
    shown = view.overlay_image()
    raw = to_rgb8(info.probe_images[last.probe_index][None])[0]
    expected = overlay(info.probe_images[last.probe_index], last.class_map)
    assert (shown.width(), shown.height()) == raw.shape[1::-1]
    table = class_colours(len(info.classes))
    rng = np.random.default_rng(0)
    for k in np.unique(last.class_map):
        ys, xs = np.nonzero(last.class_map == k)
        for i in rng.choice(len(ys), size=min(20, len(ys)), replace=False):
            y, x = int(ys[i]), int(xs[i])
            got = pixel(shown, x, y)
            assert got == tuple(expected[y, x]), (k, x, y)
            if k == 0:
                assert got == tuple(raw[y, x])                     # background: the image
            else:  # moved from the image towards the class colour, channel by channel
                towards = np.sign(table[k].astype(int) - raw[y, x].astype(int))
                assert np.all(np.sign(np.subtract(got, raw[y, x])) == towards)
    truth = info.probe_targets[last.probe_index]
    assert pixel(view.true_image(), 0, 0) == tuple(class_colours(256)[truth[0, 0]])
    assert [name for name, _ in view.legend_entries()] == list(info.classes)

    # IoU curves: one point per epoch for each class with a value, as in metrics.csv
    with (dock.checkpoint.parent / "metrics.csv").open(newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 1
    for name in info.classes:
        x, y = live.iou.curve_data(name)
        value = rows[0][f"val_iou_{name}"]
        if value in ("", None) or math.isnan(float(value)):
            assert len(x) == 0, name
        else:
            assert x.tolist() == [1.0] and y[0] == pytest.approx(float(value), abs=1e-6), name
    x, y = live.iou.curve_data(MIOU)
    assert x.tolist() == [1.0] and y[0] == pytest.approx(float(rows[0]["val_miou"]), abs=1e-6)

    # the pixel confusion matrix agrees with the trainer's mIoU
    assert dock.confusion.counts_pixels()
    assert dock.confusion.table().horizontalHeaderItem(len(info.classes)).text() == "IoU"
    assert dock.confusion.mean_iou() == pytest.approx(float(rows[0]["val_miou"]), abs=1e-4)

    # the gallery: the worst validation images by IoU, worst first, captioned with it
    gallery = dock.mistakes
    assert dock.tabs.tabText(dock.tabs.indexOf(gallery)) == "Worst IoU"
    assert 0 < gallery.count() <= min(16, info.val_size)
    values = [float(c.removeprefix("IoU ")) for c in gallery.captions()]
    assert values == sorted(values) and all(0.0 <= v <= 1.0 for v in values)
    assert "lowest IoU" in gallery.title()
    assert all(t.startswith("IoU ") and "True: " in t for t in gallery.tooltips())

    # another probe image after the run: its mask now comes from the checkpoint
    other = (last.probe_index + 1) % len(info.probe_images)
    dock.maps.probe_spin.setValue(other + 1)           # the Feature maps tab's selector
    assert view.probe_index() == other and view.probe_spin.value() == other + 1
    mask = view.predicted_mask()
    assert mask is not None and mask.shape == truth.shape
    view.probe_spin.setValue(last.probe_index + 1)     # and the Prediction tab's moves both
    assert dock.maps.probe_spin.value() == last.probe_index + 1
    expected = info.probe_images[last.probe_index][0].astype(np.float32) / 255.0
    np.testing.assert_allclose(dock.maps.probe_item.image, expected, atol=1e-6)
