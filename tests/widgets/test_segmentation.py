"""The segmentation views: one colour per class (the mask PNGs' palette), the overlay's
pixels, the true mask's ignore colour, the legend, the probe switch, the worst-IoU
captions, the IoU curves and the pixel confusion matrix."""

from __future__ import annotations

import numpy as np
import PySide6  # noqa: F401  (before anything that may import pyqtgraph)
import pytest
from PySide6.QtGui import QColor

from widgets.confusion import ConfusionView, compact
from widgets.iou_plot import MIOU, IoUPlot
from widgets.segmentation import (
    IGNORE_COLOUR,
    OVERLAY_ALPHA,
    SegmentationView,
    class_colours,
    classes_present,
    colour_hex,
    colour_mask,
    overlay,
    overlay_batch,
    worst_iou_captions,
    worst_iou_title,
    worst_iou_tooltips,
)

CLASSES = ["background", "X", "O", "plus"]


def known_mask() -> np.ndarray:
    """16×16: left half background, top right X, bottom right O, one ignore pixel."""
    m = np.zeros((16, 16), dtype=np.uint8)
    m[:8, 8:] = 1
    m[8:, 8:] = 2
    m[0, 0] = 255
    return m


def blend(grey: int, colour: tuple[int, int, int]) -> tuple[int, int, int]:
    return tuple(int(np.rint((1 - OVERLAY_ALPHA) * grey + OVERLAY_ALPHA * c)) for c in colour)


def rgb(image, x: int, y: int) -> tuple[int, int, int]:
    c = QColor(image.pixel(x, y))
    return c.red(), c.green(), c.blue()


def test_colour_table_is_the_mask_png_palette():
    from engine.predict import palette

    assert class_colours(256).reshape(-1).tolist() == palette(256)
    table = class_colours(256)
    assert len({tuple(c) for c in table}) == 256        # a distinct colour per class
    assert colour_hex(1) == "#800000" and colour_hex(2) == "#008000"
    assert IGNORE_COLOUR == tuple(table[255])


def test_overlay_colours_classes_and_leaves_background_and_ignore_as_the_image():
    image = np.full((1, 16, 16), 100, dtype=np.uint8)   # grey, stored as uint8 [C,H,W]
    out = overlay(image, known_mask())
    table = class_colours(3)
    assert tuple(out[3, 3]) == (100, 100, 100)           # background: the image
    assert tuple(out[0, 0]) == (100, 100, 100)           # ignore: the image
    assert tuple(out[2, 12]) == blend(100, tuple(table[1]))
    assert tuple(out[12, 12]) == blend(100, tuple(table[2]))
    # floats 0..1 (as after ToTensor) read as the same picture
    assert np.array_equal(overlay(image / 255.0, known_mask()), out)
    # a class map of another size is resized with nearest neighbour
    small = known_mask()[::2, ::2]
    assert tuple(overlay(image, small)[12, 12]) == blend(100, tuple(table[2]))
    batch = overlay_batch(np.stack([image, image]), np.stack([known_mask()] * 2))
    assert batch.shape == (2, 3, 16, 16) and tuple(batch[1, :, 12, 12]) == tuple(out[12, 12])


def test_true_mask_colours_every_class_and_shows_ignore_neutral():
    coloured = colour_mask(known_mask())
    assert tuple(coloured[3, 3]) == (0, 0, 0)
    assert tuple(coloured[2, 12]) == (128, 0, 0)
    assert tuple(coloured[0, 0]) == IGNORE_COLOUR
    assert classes_present(known_mask(), CLASSES) == ["background", "X", "O"]


def test_probe_view_draws_the_overlay_beside_the_true_mask(shown):
    view = shown(SegmentationView(), 700, 400)
    view.set_classes(CLASSES)
    images = np.stack([np.full((3, 16, 16), 100, np.uint8), np.zeros((3, 16, 16), np.uint8)])
    targets = np.stack([known_mask(), np.zeros((16, 16), np.uint8)])
    view.set_probes(images, targets)
    predicted = known_mask()
    predicted[0, 0] = 0
    predicted[12:, 12:] = 3          # part of the O predicted as plus
    view.show_prediction(predicted, 0, step=40, confidence=np.full((16, 16), 0.8, np.float32))
    table = class_colours(4)
    composed = view.overlay_image()
    assert (composed.width(), composed.height()) == (16, 16)
    assert rgb(composed, 3, 3) == (100, 100, 100)
    assert rgb(composed, 12, 2) == blend(100, tuple(table[1]))
    assert rgb(composed, 9, 9) == blend(100, tuple(table[2]))
    assert rgb(composed, 14, 14) == blend(100, tuple(table[3]))
    # what is on screen: each image pixel a block of its colour (nearest neighbour)
    pane = view.predicted_pane
    grabbed = pane.grab().toImage()
    target = pane.target()
    assert target.width() >= 32
    scale = target.width() / 16

    def screen(x: float, y: float) -> tuple[int, int, int]:
        dpr = grabbed.devicePixelRatio()
        px = int((target.x() + (x + 0.5) * scale) * dpr)
        py = int((target.y() + (y + 0.5) * scale) * dpr)
        return rgb(grabbed, px, py)

    assert screen(12, 2) == blend(100, tuple(table[1]))
    assert screen(14, 14) == blend(100, tuple(table[3]))
    assert screen(2, 12) == (100, 100, 100)
    assert rgb(view.true_image(), 0, 0) == IGNORE_COLOUR
    assert rgb(view.true_image(), 12, 12) == tuple(table[2])
    title = view.title.text()
    assert "step 40" in title and "80%" in title
    right = np.mean(predicted[targets[0] != 255] == targets[0][targets[0] != 255])
    assert f"{100 * right:.1f}% of its pixels right" in title
    assert view.legend_entries() == [(n, colour_hex(i)) for i, n in enumerate(CLASSES)]
    legend = view.legend_text()
    assert all(n in legend for n in CLASSES) and "not labelled" in legend
    assert "<b>plus</b>" in view.legend.text() and "<b>X</b>" in view.legend.text()


def test_probe_spin_asks_for_another_probe_and_a_prediction_switches_it(shown, qtbot):
    view = shown(SegmentationView(), 600, 400)
    view.set_classes(CLASSES)
    images = np.zeros((3, 1, 8, 8), np.uint8)
    view.set_probes(images, np.zeros((3, 8, 8), np.uint8))
    with qtbot.waitSignal(view.probe_requested) as signal:
        view.probe_spin.setValue(3)
    assert signal.args == [2] and view.probe_index() == 2
    view.show_prediction(np.ones((8, 8), np.uint8), 1)
    assert view.probe_index() == 1 and view.probe_spin.value() == 2
    assert view.predicted_mask() is not None
    view.show_probe(0)                   # another image: its old prediction would lie
    assert view.predicted_mask() is None and rgb(view.overlay_image(), 4, 4) == (0, 0, 0)
    view.clear()
    assert view.overlay_image().isNull() and view.true_image().isNull()


def test_worst_iou_captions_tooltips_and_title():
    true = np.stack([known_mask(), np.zeros((16, 16), np.uint8)])
    predicted = np.stack([np.zeros((16, 16), np.uint8), np.full((16, 16), 3, np.uint8)])
    iou = np.array([0.125, np.nan])
    assert worst_iou_captions(iou) == ["IoU 0.12", "IoU —"]
    tips = worst_iou_tooltips(true, predicted, iou, CLASSES)
    assert "True: background, X, O" in tips[0] and "Predicted: background" in tips[0]
    assert "Predicted: plus" in tips[1]
    title = worst_iou_title(2, 300, 5)
    assert title.startswith("Epoch 5: the 2 of 300 validation images with the lowest IoU")
    assert worst_iou_title(1, 1, None).startswith("The validation image with the lowest IoU")


def test_iou_curves_one_point_per_epoch_skipping_undefined(shown):
    plot = shown(IoUPlot(), 500, 300)
    plot.start(CLASSES)
    plot.add_epoch(1, [0.9, 0.2, None, float("nan")], 0.55)
    plot.add_epoch(2, np.array([0.95, 0.4, 0.3, 0.1]), 0.44)
    x, y = plot.curve_data("X")
    assert x.tolist() == [1, 2] and y.tolist() == [0.2, 0.4]
    assert plot.curve_data("O")[0].tolist() == [2]          # absent in epoch 1: no point
    assert plot.curve_data(MIOU)[1].tolist() == [0.55, 0.44]
    assert plot.pen_width(MIOU) > plot.pen_width("X")        # mIoU bold
    assert plot.legend_labels() == [*CLASSES, MIOU]
    pen = plot._items["X"].opts["pen"].color()
    assert (pen.red(), pen.green(), pen.blue()) == tuple(class_colours(2)[1])
    plot.start(["a", "b"])                                   # another run: other classes
    assert plot.curve_names() == ["a", "b", MIOU] and plot.legend_labels() == ["a", "b", MIOU]
    assert len(plot.curve_data("a")[0]) == 0


@pytest.mark.parametrize("count,text", [(0, "0"), (812, "812"), (1000, "1k"), (35_400, "35k"),
                                        (999_600, "1M"), (1_234_567, "1.2M"),
                                        (3_400_000_000, "3.4G")])
def test_compact_counts(count, text):
    assert compact(count) == text


def test_pixel_confusion_reads_compact_counts_iou_and_miou(shown):
    view = shown(ConfusionView(), 600, 300)
    m = np.array([[2_000_000, 50_000, 0], [30_000, 400_000, 0], [0, 0, 0]])
    view.set_matrix(m, ["background", "X", "O"], epoch=2, pixels=True)
    assert view.cell_text(0, 0) == "2M" and view.cell_text(1, 0) == "30k"
    assert view.table().horizontalHeaderItem(3).text() == "IoU"
    iou_x = 400_000 / (450_000 + 430_000 - 400_000)
    assert view.cell_text(1, 3) == f"{iou_x:.3f}"
    assert view.cell_text(2, 3) == "—"                    # no pixel of O anywhere
    iou_bg = 2_000_000 / (2_050_000 + 2_030_000 - 2_000_000)
    assert view.mean_iou() == pytest.approx((iou_x + iou_bg) / 2)
    title = view.title_text()
    accuracy = 2_400_000 / 2_480_000
    assert f"Pixel accuracy: {accuracy:.1%}" in title
    assert f"mIoU {(iou_x + iou_bg) / 2:.3f}" in title
    assert "epoch 2" in title
    assert "2,000,000 pixels" in view.table().item(0, 0).toolTip()
    view.set_matrix(np.array([[3, 1], [0, 4]]), ["yes", "no"])   # a classifier again
    assert view.table().horizontalHeaderItem(2).text() == "accuracy"
    assert view.cell_text(0, 0) == "3" and not view.counts_pixels()
