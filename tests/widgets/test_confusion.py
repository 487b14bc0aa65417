"""The confusion view: counts, tints, per-class and overall accuracy, resize and clear."""

from __future__ import annotations

import numpy as np
import PySide6  # noqa: F401  (before anything that may import pyqtgraph)
import pytest

from widgets.confusion import EMPTY, MAX_HEADER_CHARS, ConfusionView

M3 = np.array([[5, 1, 0], [2, 6, 2], [0, 0, 0]])  # third class: no samples
CLASSES = ["cat", "dog", "bird"]


@pytest.fixture
def view(shown):
    return shown(ConfusionView(), 500, 300)


def test_shows_counts_and_headers(view):
    view.set_matrix(M3, CLASSES, epoch=4)
    table = view.table()
    assert table.rowCount() == 3
    assert table.columnCount() == 4  # 3 classes + accuracy
    for r in range(3):
        for c in range(3):
            assert view.cell_text(r, c) == str(M3[r, c])
    assert table.verticalHeaderItem(1).text() == "true: dog"
    assert table.horizontalHeaderItem(2).text() == "pred: bird"
    assert table.horizontalHeaderItem(3).text() == "accuracy"


def test_per_class_accuracy_with_empty_row(view):
    view.set_matrix(M3, CLASSES)
    acc = view.per_class_accuracy()
    assert acc[0] == pytest.approx(5 / 6)
    assert acc[1] == pytest.approx(6 / 10)
    assert acc[2] is None
    assert view.cell_text(0, 3) == "83.3%"
    assert view.cell_text(1, 3) == "60.0%"
    assert view.cell_text(2, 3) == EMPTY


def test_overall_accuracy_and_title(view):
    view.set_matrix(M3, CLASSES, epoch=7)
    assert view.overall_accuracy() == pytest.approx(11 / 16)
    assert "68.8%" in view.title_text()
    assert "epoch 7" in view.title_text()
    view.set_matrix(np.zeros((2, 2), dtype=int), ["a", "b"])
    assert view.overall_accuracy() is None
    assert EMPTY in view.title_text()
    assert "epoch" not in view.title_text()


def test_diagonal_tint_differs_from_off_diagonal(view):
    view.set_matrix(M3, CLASSES)
    diag = view.cell_background(0, 0)
    off = view.cell_background(1, 0)
    assert diag.rgb() != off.rgb()
    assert diag.green() > diag.red()  # green-ish
    assert off.red() > off.green()  # red-ish
    # intensity follows the row fraction: 5/6 is stronger than 2/10
    assert diag.alpha() > off.alpha()
    assert view.cell_background(0, 2).alpha() == 0  # zero count: no tint


def test_set_matrix_twice_resizes(view):
    view.set_matrix(M3, CLASSES)
    view.set_matrix(np.array([[3, 1], [0, 4]]), ["yes", "no"], epoch=1)
    table = view.table()
    assert table.rowCount() == 2
    assert table.columnCount() == 3
    assert view.cell_text(1, 1) == "4"
    assert view.cell_text(0, 2) == "75.0%"
    assert view.cell_text(2, 0) == ""  # old third row is gone
    assert len(view.per_class_accuracy()) == 2
    assert view.overall_accuracy() == pytest.approx(7 / 8)


def test_clear_empties(view):
    view.set_matrix(M3, CLASSES, epoch=2)
    view.clear()
    assert view.table().rowCount() == 0
    assert view.table().columnCount() == 0
    assert view.per_class_accuracy() == []
    assert view.overall_accuracy() is None
    assert view.cell_text(0, 0) == ""
    assert "no data" in view.title_text()


def test_long_names_are_capped_and_bad_input_rejected(view):
    long = "a_really_long_class_name_indeed"
    view.set_matrix(np.eye(2, dtype=int), [long, "b"])
    header = view.table().horizontalHeaderItem(0)
    assert len(header.text()) <= len("pred: ") + MAX_HEADER_CHARS
    assert header.toolTip() == long
    with pytest.raises(ValueError):
        view.set_matrix(np.zeros((2, 3), dtype=int), ["a", "b"])
    with pytest.raises(ValueError):
        view.set_matrix(np.zeros((2, 2), dtype=int), ["a"])
