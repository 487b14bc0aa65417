"""The block palette and the theme helpers it draws with."""

from __future__ import annotations

import PySide6  # noqa: F401  (before anything that may import pyqtgraph)
import pytest
from PySide6.QtCore import QMimeData, Qt
from PySide6.QtGui import QDrag
from PySide6.QtWidgets import QApplication

from engine.blocks import CATALOGUE, CATEGORIES
from widgets.palette import MIME_TYPE, TYPE_ROLE, Palette, block_mime_data
from widgets.style import (
    CATEGORY_COLORS,
    apply_theme,
    category_color,
    category_icon,
    is_dark,
    make_palette,
    severity_icon,
    style_sheet,
)


@pytest.fixture
def palette(shown):
    return shown(Palette(), 240, 700)


def _double_click(qtbot, widget, pos) -> None:
    """What a person's double-click sends: a click, then the double-click event."""
    qtbot.mouseClick(widget, Qt.MouseButton.LeftButton, pos=pos)
    qtbot.mouseDClick(widget, Qt.MouseButton.LeftButton, pos=pos)


def _listing(palette: Palette) -> dict[str, list[str]]:
    tree = palette.tree
    return {tree.topLevelItem(i).text(0): [tree.topLevelItem(i).child(j).data(0, TYPE_ROLE)
                                           for j in range(tree.topLevelItem(i).childCount())]
            for i in range(tree.topLevelItemCount())}


def test_every_block_listed_once_under_its_category(palette):
    listing = _listing(palette)
    assert list(listing) == list(CATEGORIES)
    names = [n for group in listing.values() for n in group]
    assert sorted(names) == sorted(CATALOGUE)
    assert len(names) == len(set(names))
    for category, group in listing.items():
        assert all(CATALOGUE[n].category == category for n in group)
    assert palette.visible_blocks() == names


def test_entries_have_icon_and_tooltip_with_doc_and_params(palette):
    item = palette.item_for("Conv2d")
    assert not item.icon(0).isNull()
    tip = item.toolTip(0)
    assert "filters" in tip  # from the catalogue's doc
    for p in CATALOGUE["Conv2d"].params:
        assert p.name in tip
    assert "No parameters" in palette.item_for("Flatten").toolTip(0)


def test_search_filters_by_name_and_doc_case_insensitively(palette, qtbot):
    qtbot.keyClicks(palette.search, "POOL")
    shown = palette.visible_blocks()
    assert {"MaxPool2d", "AvgPool2d", "AdaptiveAvgPool2d", "GlobalAvgPool"} <= set(shown)
    assert "Conv2d" not in shown
    groups = {palette.tree.topLevelItem(i).text(0): palette.tree.topLevelItem(i).isHidden()
              for i in range(palette.tree.topLevelItemCount())}
    assert groups["Pooling"] is False
    assert groups["Merge"] is True  # no Merge block mentions pooling

    palette.set_filter("element-wise SUM")  # only in Add's doc, not its name
    assert palette.visible_blocks() == ["Add"]

    palette.set_filter("zzz-nothing")
    assert palette.visible_blocks() == []
    assert all(palette.tree.topLevelItem(i).isHidden()
               for i in range(palette.tree.topLevelItemCount()))

    palette.search.clear()
    assert sorted(palette.visible_blocks()) == sorted(CATALOGUE)


def test_drag_carries_the_type_name(palette, qtbot, monkeypatch):
    mime = block_mime_data("MaxPool2d")
    assert mime.hasFormat(MIME_TYPE)
    assert bytes(mime.data(MIME_TYPE)).decode("utf-8") == "MaxPool2d"

    item = palette.item_for("Conv2d")
    assert item.flags() & Qt.ItemFlag.ItemIsDragEnabled
    from_tree = palette.tree.mimeData([item])
    assert bytes(from_tree.data(MIME_TYPE)).decode("utf-8") == "Conv2d"
    assert palette.tree.mimeData([palette.tree.topLevelItem(0)]) is None  # a group header

    dragged: list[QMimeData] = []
    monkeypatch.setattr(QDrag, "exec",
                        lambda self, *a, **k: dragged.append(self.mimeData()) or 0)
    rect = palette.tree.visualItemRect(item)
    viewport = palette.tree.viewport()
    start = rect.center()
    qtbot.mousePress(viewport, Qt.MouseButton.LeftButton, pos=start)
    distance = QApplication.startDragDistance() + 5
    for step in range(1, 4):
        qtbot.mouseMove(viewport, start + type(start)(step * distance, step * 2))
    qtbot.mouseRelease(viewport, Qt.MouseButton.LeftButton)
    assert len(dragged) == 1 and bytes(dragged[0].data(MIME_TYPE)).decode("utf-8") == "Conv2d"


def test_double_click_and_enter_emit_block_activated(palette, qtbot):
    item = palette.item_for("BatchNorm")
    rect = palette.tree.visualItemRect(item)
    with qtbot.waitSignal(palette.block_activated, timeout=1000) as blocker:
        _double_click(qtbot, palette.tree.viewport(), rect.center())
    assert blocker.args == ["BatchNorm"]

    palette.tree.setCurrentItem(palette.item_for("Dropout"))
    with qtbot.waitSignal(palette.block_activated, timeout=1000) as blocker:
        qtbot.keyClick(palette.tree, Qt.Key.Key_Return)
    assert blocker.args == ["Dropout"]


def test_group_header_double_click_emits_nothing(palette, qtbot):
    header = palette.tree.topLevelItem(0)
    rect = palette.tree.visualItemRect(header)
    with qtbot.assertNotEmitted(palette.block_activated):
        _double_click(qtbot, palette.tree.viewport(), rect.center())
    assert not header.isExpanded()  # a header double-click folds the group instead


def test_enter_in_search_adds_the_first_match(palette, qtbot):
    qtbot.keyClicks(palette.search, "flat")
    with qtbot.waitSignal(palette.block_activated, timeout=1000) as blocker:
        qtbot.keyClick(palette.search, Qt.Key.Key_Return)
    assert blocker.args == ["Flatten"]


def test_arrow_keys_in_search_move_through_matches(palette, qtbot):
    qtbot.keyClicks(palette.search, "pool")
    first = palette.tree.currentItem().data(0, TYPE_ROLE)
    qtbot.keyClick(palette.search, Qt.Key.Key_Down)
    second = palette.tree.currentItem().data(0, TYPE_ROLE)
    assert [first, second] == palette.visible_blocks()[:2]
    with qtbot.waitSignal(palette.block_activated, timeout=1000) as blocker:
        qtbot.keyClick(palette.search, Qt.Key.Key_Return)
    assert blocker.args == [second]


# ---- style -------------------------------------------------------------------------------


@pytest.mark.parametrize("dark", [False, True])
def test_category_colours_are_distinct_per_theme(dark):
    assert set(CATEGORY_COLORS) == set(CATEGORIES)
    colours = [category_color(c, dark).name() for c in CATEGORIES]
    assert len(set(colours)) == len(CATEGORIES)
    assert category_color("Something new", dark).isValid()
    for c in CATEGORIES:
        assert not category_icon(c, dark).isNull()
    assert not severity_icon("error", dark).isNull()


def test_apply_theme_switches_palette_and_keeps_widgets_working(qtbot, palette):
    app = QApplication.instance()
    saved_palette, saved_sheet = app.palette(), app.styleSheet()
    try:
        light_icon = palette.item_for("Conv2d").icon(0).cacheKey()
        assert apply_theme(app, True) is True
        assert is_dark(app)
        qtbot.wait(10)
        assert palette.item_for("Conv2d").icon(0).cacheKey() != light_icon  # redrawn
        assert app.palette().color(app.palette().ColorRole.Window).lightness() < 128
        assert "paletteSearch" in app.styleSheet()
        assert apply_theme(app, False) is False
        assert not is_dark(app)
        assert isinstance(apply_theme(app, None), bool)  # follows the desktop
        qtbot.wait(10)
        assert sorted(palette.visible_blocks()) == sorted(CATALOGUE)
    finally:
        apply_theme(app, False)  # stop following the desktop
        if hasattr(app.styleHints(), "setColorScheme"):
            app.styleHints().setColorScheme(Qt.ColorScheme.Unknown)
        app.setProperty("convas_dark", None)
        app.setPalette(saved_palette)
        app.setStyleSheet(saved_sheet)


def test_style_sheet_has_no_unfilled_placeholders():
    for dark in (False, True):
        assert "$" not in style_sheet(dark)
        assert make_palette(dark).color(make_palette(dark).ColorRole.Text).isValid()
