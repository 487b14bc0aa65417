"""The detection views: box colours from the one class table, boxes drawn where they
are (solid predictions, dashed truths, the image untouched inside), the probe view's
title and legend, the worst-images captions, the mAP curves, and File → Predict's
detection rows."""

from __future__ import annotations

import numpy as np
import PySide6  # noqa: F401  (before anything that may import pyqtgraph)
import pytest
from PySide6.QtGui import QColor

from engine.predict import palette
from widgets.detection_view import (
    DetectionView,
    box_colour,
    box_colour_hex,
    boxes_caption,
    match_counts,
    render,
    render_batch,
    worst_box_captions,
    worst_box_title,
    worst_box_tooltips,
)
from widgets.map_plot import MAP, MAP50, MapPlot
from widgets.prediction_view import PredictionItem, PredictionView
from widgets.segmentation import class_colours

CLASSES = ["X", "O", "plus"]
GREY = 40


def image(size: int = 16) -> np.ndarray:
    return np.full((1, size, size), GREY, dtype=np.uint8)


def rgb_at(picture: np.ndarray, x: int, y: int) -> tuple[int, int, int]:
    """A [3,H,W] picture's pixel."""
    return tuple(int(v) for v in picture[:, y, x])


def near(picture: np.ndarray, x: int, y: int, r: int = 1) -> set[tuple[int, int, int]]:
    """The colours within ``r`` pixels of (x, y)."""
    return {rgb_at(picture, i, j) for i in range(x - r, x + r + 1)
            for j in range(y - r, y + r + 1)}


def qcolour(image, x: int, y: int) -> tuple[int, int, int]:
    c = QColor(image.pixel(x, y))
    return c.red(), c.green(), c.blue()


def test_box_colours_are_the_class_table_after_its_background():
    flat = palette(8)
    for k in range(5):
        assert box_colour(k) == tuple(class_colours(8)[k + 1])
        assert list(box_colour(k)) == flat[3 * (k + 1):3 * (k + 2)]   # the mask PNGs' too
    assert box_colour_hex(0) == "#800000" and len({box_colour(k) for k in range(5)}) == 5


def test_a_predicted_box_is_drawn_solid_at_its_edges_and_the_inside_is_the_image():
    # box (2, 2)–(10, 12) at scale 4: edges at x = 8 and 40, y = 8 and 48
    pic = render(image(), None, np.array([[2, 2, 10, 12]], np.float32), np.array([0.9]),
                 np.array([1]), CLASSES, scale=4)
    assert pic.shape == (3, 64, 64) and pic.dtype == np.uint8
    colour = box_colour(1)
    for x, y in ((8, 28), (40, 28), (24, 8), (24, 48)):     # the four edges, mid-way
        assert colour in near(pic, x, y), (x, y)
    assert rgb_at(pic, 24, 28) == (GREY,) * 3               # inside: the image itself
    assert rgb_at(pic, 60, 60) == (GREY,) * 3               # outside too
    assert colour not in near(pic, 24, 28, 6)


def test_a_true_box_is_dashed_over_a_light_line():
    rows = np.array([[2, 1, 1, 15, 15], [-1, 0, 0, 0, 0]], np.float32)   # + a padding row
    pic = render(image(), rows, scale=4)
    top = [rgb_at(pic, x, 4) for x in range(8, 56)]                     # the top edge, y = 4
    assert box_colour(2) in top                                          # dashes …
    assert any(min(c) > 150 for c in top)                                # … over a light line
    assert rgb_at(pic, 32, 32) == (GREY,) * 3
    # the padding row draws nothing at (0, 0)
    assert rgb_at(pic, 1, 1) == (GREY,) * 3


def test_a_tag_names_the_class_and_score_in_the_class_colour(qapp):  # fonts need the app
    boxes = np.array([[4, 6, 12, 14]], np.float32)
    plain = render(image(), None, boxes, np.array([0.5]), np.array([0]), CLASSES, scale=8)
    tagged = render(image(), None, boxes, np.array([0.5]), np.array([0]), CLASSES, scale=8,
                    tags=True)
    above = tagged[:, 30:47, 32:60]                 # just above the box's top edge (y = 48)
    assert not np.array_equal(plain[:, 30:47, 32:60], above)
    colours = {tuple(int(v) for v in above[:, j, i]) for j in range(above.shape[1])
               for i in range(above.shape[2])}
    assert box_colour(0) in colours and (255, 255, 255) in colours   # white text on it


def test_render_batch_draws_detection_rows_per_image():
    images = np.stack([image(), image()])
    truths = [np.array([[0, 2, 2, 8, 8]], np.float32), np.zeros((0, 5), np.float32)]
    found = [np.zeros((0, 6), np.float32), np.array([[2, 0.7, 4, 4, 12, 12]], np.float32)]
    out = render_batch(images, truths, found, scale=2)
    assert out.shape == (2, 3, 32, 32)
    assert box_colour(0) in {rgb_at(out[0], x, 4) for x in range(4, 16)}
    assert box_colour(2) in near(out[1], 8, 16)
    assert box_colour(2) not in {rgb_at(out[0], x, y) for x in range(32) for y in range(32)}


def test_match_counts_pairs_boxes_of_the_same_class_by_iou():
    truth = np.array([[0, 0, 0, 10, 10], [1, 20, 20, 30, 30], [-1, 0, 0, 0, 0]], np.float32)
    boxes = np.array([[0, 0, 10, 9], [20, 20, 30, 30], [0, 0, 10, 10]], np.float32)
    # the first finds X; the second has the wrong class; the third is a duplicate
    assert match_counts(truth, boxes, np.array([0, 0, 0])) == (1, 1, 2)
    assert match_counts(truth, boxes[:2], np.array([0, 1])) == (2, 0, 0)
    assert match_counts(truth, np.zeros((0, 4)), np.zeros(0)) == (0, 2, 0)
    assert match_counts(np.zeros((0, 5)), boxes[:1], np.array([0])) == (0, 0, 1)


def test_captions_tooltips_and_titles_of_the_worst_images():
    assert worst_box_captions(np.array([[3, 1], [0, 2]])) == ["3 missed, 1 false",
                                                              "0 missed, 2 false"]
    tips = worst_box_tooltips([np.array([[0, 1, 1, 5, 5], [2, 3, 3, 9, 9]], np.float32)],
                              [np.array([[1, 0.83, 1, 1, 5, 5]], np.float32)], CLASSES)
    assert tips == ["True: X, plus\nDetected: O 0.83\n(solid: detections, dashed: true "
                    "boxes)"]
    assert worst_box_title(16, 600, 3).startswith("Epoch 3: the 16 of 600 validation images "
                                                  "with the most missed and false boxes")
    assert worst_box_title(0, 600, 2) == ("Epoch 2: every validation box was found, and "
                                          "nothing else.")
    assert boxes_caption(np.array([[2, 0, 0, 1, 1], [0, 0, 0, 1, 1], [2, 0, 0, 1, 1],
                                   [-1, 0, 0, 0, 0]]), CLASSES) == "X + plus ×2"
    assert boxes_caption(np.zeros((0, 5)), CLASSES) == "no boxes"


def test_the_probe_view_draws_boxes_on_screen_and_counts_what_was_found(shown, qtbot):
    view = shown(DetectionView(), 420, 420)
    view.set_classes(CLASSES)
    images = np.stack([image(32), image(32)])
    targets = np.array([[[0, 2, 2, 12, 12], [1, 16, 16, 30, 30]],
                        [[2, 4, 4, 20, 20], [-1, 0, 0, 0, 0]]], np.float32)
    view.set_probes(images, targets)
    assert view.true_boxes().shape == (2, 5) and view.prediction() is None
    view.show_prediction(np.array([[2, 2, 12, 12], [18, 2, 30, 10]], np.float32),
                         np.array([0.9, 0.4]), np.array([0, 2]), 0, step=120)
    assert view.title.text() == "Probe image 1 · step 120 · 1 of 2 true boxes found, 1 false"
    boxes, scores, labels = view.prediction()
    assert labels.tolist() == [0, 2] and scores[0] == pytest.approx(0.9)
    # on screen: the best box's left edge, half-way down, in the class colour
    picture = view.pane.grab().toImage()
    rect = view.image_rect()
    scale = rect.width() / 32
    x, y = rect.x() + 2 * scale, rect.y() + 7 * scale
    seen = {qcolour(picture, int(x) + dx, int(y)) for dx in (-1, 0, 1)}
    assert box_colour(0) in seen
    inside = qcolour(picture, int(rect.x() + 7 * scale), int(rect.y() + 9 * scale))
    assert inside == (GREY,) * 3
    assert [n for n, _ in view.legend_entries()] == CLASSES
    assert "solid: detected" in view.legend_text() and "<b>X</b>" in view.legend.text()
    # the other probe: its own true boxes at once, its detections with the next event
    with qtbot.waitSignal(view.probe_requested) as asked:
        view.probe_spin.setValue(2)
    assert asked.args == [1] and view.probe_index() == 1
    assert view.true_boxes().shape == (1, 5) and view.prediction() is None
    view.clear()
    assert view.title.text() == DetectionView.EMPTY


def test_the_map_plot_has_a_point_per_epoch_and_skips_missing_values(shown):
    plot = shown(MapPlot(), 400, 300)
    assert plot.legend_labels() == [MAP50, MAP]
    plot.add_epoch(1, 0.25, 0.1)
    plot.add_epoch(2, 0.5, float("nan"))
    plot.add_epoch(3, None, 0.3)
    x, y = plot.curve_data(MAP50)
    assert x.tolist() == [1.0, 2.0] and y.tolist() == [0.25, 0.5]
    x, y = plot.curve_data(MAP)
    assert x.tolist() == [1.0, 3.0] and y.tolist() == [0.1, 0.3]
    plot.start()
    assert len(plot.curve_data(MAP50)[0]) == 0


def test_a_detection_prediction_row_and_picture(shown):
    pic = np.full((32, 64, 3), GREY, np.uint8)      # shown at half its own 128×64 size
    found = ({"class": "O", "index": 1, "score": 0.91, "box": [8.0, 8.0, 40.0, 56.0]},)
    item = PredictionItem("a/b.png", pic, classes=tuple(CLASSES), detections=found,
                          own_size=(128, 64))
    assert item.summary() == "b.png: 1 box: O 0.91"
    drawn = item.picture()
    # enlarged to at least 384 px: 64 px → ×6; the box's left edge at 8 / 2 · 6 = 24
    assert drawn.shape == (192, 384, 3)
    assert box_colour(1) in {tuple(int(v) for v in drawn[y, x]) for x in (23, 24, 25)
                             for y in (90, 100)}
    assert tuple(drawn[100, 60]) == (GREY,) * 3
    none = PredictionItem("c.png", pic, classes=tuple(CLASSES), detections=())
    assert none.summary() == "c.png: 0 boxes above the threshold"
    view = shown(PredictionView(), 700, 500)
    view.add_items([item, none])
    assert view.row_texts() == [item.summary(), none.summary()]
    assert "0.910" in view.details.text() and "[8.0, 8.0, 40.0, 56.0]" in view.details.text()
