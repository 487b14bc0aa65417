"""Edit → Fit Anchors to Dataset…: k-means anchors for a detection design's Output from
the boxes of the dataset it trains on, loaded in the background, with the mean best IoU
before → after; Apply is one undo step that Ctrl+Z takes back."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest

from designer.anchor_fit import AnchorFitDialog
from designer.anchor_stats import box_sizes, fit_anchors
from designer.templates import template_files
from engine import Graph
from engine.data import load_dataset
from engine.detection.anchors import mean_best_iou

START = [[8.0, 8.0], [16.0, 16.0], [32.0, 32.0]]      # the Output's default anchors


def yolo(anchors=START) -> Graph:
    f = next(f for f in template_files() if f.name == "yolo_shapes.convas.json")
    graph = Graph.loads(f.read_text("utf-8"), f.name)
    graph.training["dataset_options"] = {"count": 200}
    out = next(n for n in graph.nodes if graph.type_of(n) == "Output")
    graph.params_of(out)["anchors"] = anchors
    return graph


def menu_action(window, menu: str, text: str):
    bar = next(a.menu() for a in window.menuBar().actions() if a.text() == menu)
    return next(a for a in bar.actions() if a.text() == text)


def open_fit(window, qtbot) -> AnchorFitDialog:
    menu_action(window, "&Edit", "Fit &Anchors to Dataset…").trigger()
    dialog = window.findChildren(AnchorFitDialog)[-1]
    qtbot.waitUntil(lambda: dialog.result is not None or "Cannot" in dialog.text.text(),
                    timeout=60_000)
    return dialog


def test_box_sizes_leave_out_the_padding():
    rows = np.array([[[0, 1, 2, 11, 22], [-1, 0, 0, 0, 0]], [[3, 0, 0, 5, 4], [1, 2, 2, 4, 4]]],
                    np.float32)
    assert box_sizes(rows).tolist() == [[10, 20], [5, 4], [2, 2]]


def test_fit_applies_as_one_undo_step_and_ctrl_z_restores(window, qtbot):
    window.doc.new_from(yolo())
    out = next(n for n in window.doc.graph.nodes if window.doc.graph.type_of(n) == "Output")
    dialog = open_fit(window, qtbot)
    assert dialog.result is not None, dialog.text.text()
    # the dataset a run would get (the design's training settings), fitted as the engine does
    ds = load_dataset("shapes-det", image_shape=(1, 64, 64), options={"count": 200})
    expected = fit_anchors(ds.train.y.numpy(), START, "shapes-det")
    assert dialog.result == expected
    wh = box_sizes(ds.train.y.numpy())
    assert dialog.result.before == pytest.approx(mean_best_iou(wh, np.array(START)))
    assert dialog.result.after > dialog.result.before
    text = dialog.text.text()
    assert f"{expected.before:.3f} → <b>{expected.after:.3f}" in text
    assert "8×8, 16×16, 32×32" in text and f"{len(wh):,} boxes" in text
    stack = window.doc.undo_stack
    before = stack.index()
    qtbot.mouseClick(dialog.apply_button, Qt.MouseButton.LeftButton)
    assert not dialog.isVisible()
    assert stack.index() == before + 1 and stack.text(before) == "Fit anchors to shapes-det"
    assert window.doc.graph.params_of(out)["anchors"] == expected.fitted
    assert window.doc.report.errors == []      # three anchors still: the head still fits
    window.activateWindow()                    # back from the dialog
    qtbot.waitUntil(window.isActiveWindow)
    QTest.keyClick(window.canvas.viewport(), Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert window.doc.graph.params_of(out)["anchors"] == START
    assert stack.index() == before


def test_cancel_changes_nothing_and_a_classifier_is_told_what_to_do(window, qtbot):
    window.doc.new_from(yolo())
    dialog = open_fit(window, qtbot)
    index = window.doc.undo_stack.index()
    dialog.reject()
    assert window.doc.undo_stack.index() == index
    f = next(f for f in template_files() if f.name.startswith("lenet"))
    window.doc.new_from(Graph.loads(f.read_text("utf-8"), f.name))
    count = len(window.findChildren(AnchorFitDialog))
    menu_action(window, "&Edit", "Fit &Anchors to Dataset…").trigger()
    assert len(window.findChildren(AnchorFitDialog)) == count
    assert "set the Output block's task to detection" in window.statusBar().currentMessage()


def test_a_dataset_without_boxes_is_refused_in_the_dialog(window, qtbot):
    graph = yolo()
    graph.training.update(dataset="shapes", dataset_options={"count": 60})
    window.doc.new_from(graph)
    dialog = open_fit(window, qtbot)
    assert dialog.result is None and not dialog.apply_button.isEnabled()
    assert dialog.text.text().startswith("Cannot fit anchors: shapes has no boxes")
    assert "choose a detection dataset" in dialog.text.text()
