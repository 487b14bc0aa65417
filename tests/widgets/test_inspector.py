"""The inspector: forms built from ParamSpecs, one edit request per user change."""

from __future__ import annotations

import PySide6  # noqa: F401  (before anything that may import pyqtgraph)
import pytest
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtGui import QWheelEvent
from PySide6.QtWidgets import QApplication

from engine.blocks import CATALOGUE
from widgets.inspector import Inspector
from widgets.param_editors import FloatEditor, Int2Editor, IntEditor, SciSpinBox


@pytest.fixture
def inspector(shown):
    return shown(Inspector(), 340, 700)


@pytest.fixture
def edits(inspector):
    got: list[tuple] = []
    inspector.param_edit_requested.connect(lambda *args: got.append(args))
    return got


@pytest.mark.parametrize("type_name", list(CATALOGUE))
def test_form_builds_for_every_block_without_emitting(inspector, edits, type_name):
    spec = CATALOGUE[type_name]
    inspector.show_node("n1", type_name, {}, None)
    assert inspector.node_id == "n1"
    assert inspector.param_names() == [p.name for p in spec.params]
    assert inspector.doc.text() == spec.doc
    for p in spec.params:
        assert inspector.editor(p.name).value() == p.default
        assert not inspector.reset_button(p.name).isVisibleTo(inspector)
        assert p.doc in inspector.editor(p.name).toolTip()
        assert p.expected() in inspector.editor(p.name).toolTip()
    inspector.refresh({}, None)
    assert edits == []


def test_changing_an_int_emits_one_request(inspector, edits, qtbot):
    inspector.show_node("c1", "Conv2d", {}, None)
    editor = inspector.editor("out_channels")
    assert isinstance(editor, IntEditor)
    assert (editor.spin.minimum(), editor.spin.maximum()) == (1, 65536)
    editor.spin.setFocus()
    qtbot.keyClick(editor.spin, Qt.Key.Key_Up)
    assert edits == [("c1", "out_channels", 17)]
    assert inspector.reset_button("out_channels").isVisibleTo(inspector)


def test_typing_a_number_emits_plain_ints(inspector, edits, qtbot):
    inspector.show_node("c1", "Linear", {}, None)
    spin = inspector.editor("out_features").spin
    spin.setFocus()
    spin.selectAll()
    qtbot.keyClicks(spin, "42")
    assert edits[-1] == ("c1", "out_features", 42)
    assert all(type(v) is int for _, _, v in edits)


def test_int2_pair_editor_emits_h_w(inspector, edits, qtbot):
    inspector.show_node("c1", "Conv2d", {}, None)
    editor = inspector.editor("kernel_size")
    assert isinstance(editor, Int2Editor)
    assert not editor.w.isVisibleTo(editor)
    qtbot.mouseClick(editor.pair, Qt.MouseButton.LeftButton)
    assert editor.w.isVisibleTo(editor)
    assert edits == []  # opening h×w alone changes nothing
    editor.w.setFocus()
    qtbot.keyClick(editor.w, Qt.Key.Key_Up)
    assert edits == [("c1", "kernel_size", [3, 4])]
    qtbot.mouseClick(editor.pair, Qt.MouseButton.LeftButton)  # back to one square value
    assert edits[-1] == ("c1", "kernel_size", 3)
    assert len(edits) == 2


def test_int2_shows_a_stored_pair(inspector):
    inspector.show_node("p1", "MaxPool2d", {"kernel_size": [2, 3]}, None)
    editor = inspector.editor("kernel_size")
    assert editor.is_pair() and (editor.h.value(), editor.w.value()) == (2, 3)


def test_choosing_same_or_valid_emits_the_word(inspector, edits, qtbot):
    inspector.show_node("c1", "Conv2d", {"padding": 1}, None)
    editor = inspector.editor("padding")
    assert editor.mode is not None and editor.mode.currentText() == "number"
    assert editor.h.isVisibleTo(editor)
    editor.mode.setFocus()
    qtbot.keyClick(editor.mode, Qt.Key.Key_Down)
    assert edits == [("c1", "padding", "same")]
    assert not editor.h.isVisibleTo(editor)  # a word needs no number
    qtbot.keyClick(editor.mode, Qt.Key.Key_Down)
    assert edits[-1] == ("c1", "padding", "valid")
    editor.mode.setCurrentIndex(0)  # back to a number
    assert edits[-1] == ("c1", "padding", editor.h.value())
    assert len(edits) == 3


def test_nullable_stride_reads_as_the_kernel(inspector, edits):
    inspector.show_node("p1", "MaxPool2d", {}, None)
    editor = inspector.editor("stride")
    assert editor.mode.currentText() == "= kernel"
    assert not editor.h.isVisibleTo(editor)
    editor.mode.setCurrentIndex(0)
    assert edits == [("p1", "stride", editor.h.value())]
    editor.mode.setCurrentIndex(editor.mode.count() - 1)
    assert edits[-1] == ("p1", "stride", None)


def test_reset_emits_none_and_shows_the_default(inspector, edits, qtbot):
    inspector.show_node("c1", "Conv2d", {"out_channels": 32, "bias": False}, None)
    reset = inspector.reset_button("out_channels")
    assert reset.isVisibleTo(inspector)
    assert not inspector.reset_button("groups").isVisibleTo(inspector)
    qtbot.mouseClick(reset, Qt.MouseButton.LeftButton)
    assert edits == [("c1", "out_channels", None)]
    assert inspector.editor("out_channels").spin.value() == 16
    assert not reset.isVisibleTo(inspector)


def test_negative_slope_only_for_leaky_relu(inspector, edits):
    inspector.show_node("a1", "Activation", {}, None)
    assert inspector.row_visible("function")
    assert not inspector.row_visible("negative_slope")
    combo = inspector.editor("function").combo
    combo.setCurrentText("leaky_relu")
    assert edits == [("a1", "function", "leaky_relu")]
    assert inspector.row_visible("negative_slope")
    combo.setCurrentText("gelu")
    assert not inspector.row_visible("negative_slope")

    inspector.show_node("a2", "Activation", {"function": "leaky_relu"}, None)
    assert inspector.row_visible("negative_slope")
    inspector.refresh({"function": "tanh"}, None)  # e.g. after undo
    assert not inspector.row_visible("negative_slope")


def test_refresh_updates_in_place_without_emitting(inspector, edits, qtbot):
    inspector.show_node("c1", "Conv2d", {}, None)
    spin = inspector.editor("out_channels").spin
    spin.setFocus()
    inspector.refresh({"out_channels": 64, "padding": "valid", "stride": [2, 1]}, "bad shape")
    assert edits == []
    assert inspector.editor("out_channels").spin is spin  # not rebuilt
    assert spin.value() == 64
    assert inspector.editor("padding").mode.currentText() == "valid"
    assert inspector.editor("stride").is_pair()
    assert inspector.error.text() == "bad shape" and inspector.error.isVisibleTo(inspector)
    inspector.refresh({}, None)
    assert spin.value() == 16 and edits == []
    assert not inspector.error.isVisibleTo(inspector)


def test_showing_the_same_node_again_keeps_the_editors(inspector, edits):
    inspector.show_node("c1", "Conv2d", {}, None)
    spin = inspector.editor("out_channels").spin
    inspector.show_node("c1", "Conv2d", {"out_channels": 8}, None)
    assert inspector.editor("out_channels").spin is spin and spin.value() == 8
    inspector.show_node("c2", "Conv2d", {}, None)  # another block: a fresh form
    assert inspector.editor("out_channels").spin is not spin
    assert inspector.id_label.text() == "c2" and edits == []


def _wheel(widget, up: bool = True) -> None:
    centre = QPointF(widget.rect().center())
    event = QWheelEvent(centre, QPointF(widget.mapToGlobal(widget.rect().center())),
                        QPoint(0, 0), QPoint(0, 120 if up else -120),
                        Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier,
                        Qt.ScrollPhase.NoScrollPhase, False)
    QApplication.sendEvent(widget, event)


def test_wheel_edits_only_the_focused_editor(inspector, edits):
    inspector.show_node("c1", "Conv2d", {}, None)
    spin = inspector.editor("out_channels").spin
    inspector.setFocus()
    _wheel(spin)  # scrolling past the form
    assert edits == []
    spin.setFocus()
    _wheel(spin)
    assert edits == [("c1", "out_channels", 17)]


def test_float_accepts_scientific_notation(inspector, edits, qtbot):
    inspector.show_node("b1", "BatchNorm", {}, None)
    editor = inspector.editor("eps")
    assert isinstance(editor, FloatEditor)
    spin = editor.spin
    assert isinstance(spin, SciSpinBox)
    assert spin.text() == "1e-05"
    spin.setFocus()
    spin.selectAll()
    qtbot.keyClicks(spin, "2.5e-7")
    assert edits == []  # not yet committed while typing
    qtbot.keyClick(spin, Qt.Key.Key_Return)
    assert edits == [("b1", "eps", 2.5e-07)]
    qtbot.keyClick(spin, Qt.Key.Key_Up)  # a decade up on a log-scale range
    assert edits[-1][2] == pytest.approx(2.5e-06)
    assert spin.validate("1e-", 3)[0] != spin.validate("abc", 3)[0]


def test_float_with_a_linear_range_steps_by_hundredths(inspector, edits, qtbot):
    inspector.show_node("d1", "Dropout", {}, None)
    spin = inspector.editor("p").spin
    spin.setFocus()
    qtbot.keyClick(spin, Qt.Key.Key_Up)
    assert edits == [("d1", "p", pytest.approx(0.51))]


def test_bool_and_error_and_summary(inspector, edits, qtbot):
    inspector.show_node("l1", "Linear", {}, "Linear needs a vector")
    assert inspector.error.isVisibleTo(inspector)
    assert "vector" in inspector.error.text()
    inspector.set_summary("output [10] · 1,290 params · 1.28 k MACs")
    assert inspector.summary.text().startswith("output [10]")
    check = inspector.editor("bias").check
    qtbot.mouseClick(check, Qt.MouseButton.LeftButton)
    assert edits == [("l1", "bias", False)]


def test_invalid_and_unknown_values_are_flagged(inspector, edits, qtbot):
    inspector.show_node("c1", "Conv2d", {"out_channels": 0, "colour": "blue"}, None)
    label = inspector._rows["out_channels"].label
    assert "below the minimum" in label.toolTip()
    assert "color" in label.styleSheet()
    assert "colour" in inspector.param_names()
    qtbot.mouseClick(inspector.reset_button("colour"), Qt.MouseButton.LeftButton)
    assert edits == [("c1", "colour", None)]
    inspector.refresh({"out_channels": 0}, None)  # the document dropped it
    assert "colour" not in inspector.param_names()


def test_clear_shows_select_a_block(inspector, edits):
    inspector.show_node("c1", "Conv2d", {}, None)
    inspector.clear()
    assert inspector.node_id is None
    assert inspector.stack.currentWidget() is inspector.empty
    assert inspector.empty.text() == "Select a block"
    inspector.refresh({"out_channels": 3}, None)  # nothing shown: ignored
    assert edits == []
