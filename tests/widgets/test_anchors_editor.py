"""The inspector's editor of a detection Output's anchors: typed ``w,h`` pairs become
one edit; text that is no list of positive pairs is marked and edits nothing."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtTest import QTest

from engine.blocks import CATALOGUE
from widgets.param_editors import AnchorsEditor, make_editor

SPEC = next(p for p in CATALOGUE["Output"].params if p.name == "anchors")


def editor(qtbot) -> AnchorsEditor:
    e = make_editor(SPEC)
    qtbot.addWidget(e)
    e.show()
    e.set_value(SPEC.default)
    return e


def type_line(qtbot, e: AnchorsEditor, text: str) -> None:
    e.line.setFocus()
    e.line.selectAll()
    QTest.keyClicks(e.line, text)
    QTest.keyClick(e.line, Qt.Key.Key_Return)


def test_the_default_shows_as_pairs_and_typed_pairs_are_one_edit(qtbot):
    e = editor(qtbot)
    assert isinstance(e, AnchorsEditor)
    assert e.line.text() == "8,8; 16,16; 32,32"
    edits = []
    e.edited.connect(edits.append)
    type_line(qtbot, e, "6,7; 12.5, 12 ;30×20")
    assert edits == [[[6, 7], [12.5, 12], [30, 20]]]
    assert e.line.text() == "6,7; 12.5,12; 30,20" and not e.property("invalid")
    type_line(qtbot, e, "6,7; 12.5,12; 30,20")   # the same value again: no edit
    assert len(edits) == 1


def test_text_that_is_no_list_of_positive_pairs_is_marked_and_edits_nothing(qtbot):
    e = editor(qtbot)
    edits = []
    e.edited.connect(edits.append)
    for bad in ("8,8; -1,2", "8; 16,16", "a,b", ""):
        type_line(qtbot, e, bad)
        assert e.property("invalid"), bad
        assert "w,h pairs" in e.line.toolTip()
    assert edits == []
    type_line(qtbot, e, "9,9")
    assert edits == [[[9, 9]]] and not e.property("invalid")
