"""The block palette and the theme helpers it draws with."""

from __future__ import annotations

import dataclasses

import PySide6  # noqa: F401  (before anything that may import pyqtgraph)
import pytest
from PySide6.QtCore import QMimeData, Qt
from PySide6.QtGui import QDrag
from PySide6.QtWidgets import QApplication

from engine.blocks import CATALOGUE, CATEGORIES
from engine.graph import Graph
from widgets.palette import (
    DESIGN,
    DESIGN_HINT,
    LIBRARY,
    LIBRARY_HINT,
    LIBRARY_MIME,
    MIME_TYPE,
    TYPE_ROLE,
    Palette,
    block_mime_data,
    library_block_name,
)
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
    assert list(listing) == [*CATEGORIES, DESIGN, LIBRARY]
    assert listing.pop(DESIGN) == [None] and listing.pop(LIBRARY) == [None]  # their hints
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


# ---- blocks made of blocks: "This design" and "My blocks" -------------------------------


def _user_specs(*names_docs: tuple[str, str]) -> list:
    """Specs of user blocks as a design defines them: one 1×1 convolution each, with a
    ``width`` argument."""
    blocks = {name: {"doc": doc, "params": {"width": {"type": "int", "default": 8, "min": 1,
                                                      "doc": "output channels"}},
                     "nodes": [{"id": "x", "type": "Input"},
                               {"id": "conv", "type": "Conv2d",
                                "params": {"out_channels": "$width", "kernel_size": 1}},
                               {"id": "y", "type": "Output"}],
                     "edges": [{"from": "x", "to": "conv"}, {"from": "conv", "to": "y"}]}
              for name, doc in names_docs}
    g = Graph.from_dict({"format": "convas.graph", "version": 1, "blocks": blocks,
                         "nodes": [], "edges": []})
    return [g.blocks[n].spec for n in g.blocks]


def _library_specs(*names_docs: tuple[str, str]) -> list:
    return [dataclasses.replace(s, category=LIBRARY, source=f"/lib/{s.type}.convas-block.json")
            for s in _user_specs(*names_docs)]


def test_sections_list_the_blocks_given_and_show_a_hint_when_empty(palette):
    assert palette.section_hint(DESIGN) == DESIGN_HINT
    assert palette.section_hint(LIBRARY) == LIBRARY_HINT
    hint = palette.tree.topLevelItem(len(CATEGORIES)).child(0)
    assert not hint.flags() & Qt.ItemFlag.ItemIsSelectable  # a hint is never a block
    assert palette.tree.mimeData([hint]) is None

    palette.set_design_blocks(_user_specs(("Stem", "the first convolutions"),
                                          ("Head", "pool and classify")))
    palette.set_library_blocks(_library_specs(("ConvBN", "convolution and batch norm")))
    listing = _listing(palette)
    assert listing[DESIGN] == ["Head", "Stem"]  # alphabetical
    assert listing[LIBRARY] == ["ConvBN"]
    assert palette.section_hint(DESIGN) is None and palette.section_hint(LIBRARY) is None
    assert palette.visible_blocks()[-3:] == ["Head", "Stem", "ConvBN"]

    tip = palette.item_for("Stem", DESIGN).toolTip(0)
    assert "the first convolutions" in tip and "width" in tip and "output channels" in tip
    assert "this design" in tip
    assert "/lib/ConvBN.convas-block.json" in palette.item_for("ConvBN", LIBRARY).toolTip(0)
    assert not palette.item_for("ConvBN", LIBRARY).icon(0).isNull()

    palette.set_design_blocks([])  # the design's last block was ungrouped
    assert _listing(palette)[DESIGN] == [None]
    assert palette.section_hint(DESIGN) == DESIGN_HINT
    with pytest.raises(KeyError):
        palette.item_for("Stem", DESIGN)


def test_search_finds_section_blocks_and_hides_hints(palette, qtbot):
    palette.set_design_blocks(_user_specs(("Stem", "the first convolutions")))
    qtbot.keyClicks(palette.search, "first conv")
    assert palette.visible_blocks() == ["Stem"]
    library = palette.tree.topLevelItem(len(CATEGORIES) + 1)
    assert library.isHidden()  # nothing matches there, its hint is no match
    with qtbot.waitSignal(palette.block_activated, timeout=1000) as blocker:
        qtbot.keyClick(palette.search, Qt.Key.Key_Return)
    assert blocker.args == ["Stem"]

    # the library is filled while a search is typed: the filter applies to it at once
    palette.set_library_blocks(_library_specs(("FirstConv", "a stem"), ("Other", "nothing")))
    assert palette.visible_blocks() == ["Stem", "FirstConv"]
    palette.search.clear()
    assert not library.isHidden() and palette.section_hint(DESIGN) is None
    assert palette.visible_blocks()[-3:] == ["Stem", "FirstConv", "Other"]


def test_activating_a_library_block_says_it_comes_from_the_library(palette, qtbot):
    palette.set_design_blocks(_user_specs(("ConvBN", "mine")))
    palette.set_library_blocks(_library_specs(("ConvBN", "the library's")))  # same name
    design, library = palette.item_for("ConvBN", DESIGN), palette.item_for("ConvBN", LIBRARY)
    viewport = palette.tree.viewport()
    with qtbot.waitSignal(palette.library_block_activated, timeout=1000) as blocker, \
            qtbot.assertNotEmitted(palette.block_activated):
        palette.tree.scrollToItem(library)
        _double_click(qtbot, viewport, palette.tree.visualItemRect(library).center())
    assert blocker.args == ["ConvBN"]
    with qtbot.waitSignal(palette.block_activated, timeout=1000) as blocker, \
            qtbot.assertNotEmitted(palette.library_block_activated):
        palette.tree.scrollToItem(design)
        _double_click(qtbot, viewport, palette.tree.visualItemRect(design).center())
    assert blocker.args == ["ConvBN"]

    qtbot.keyClicks(palette.search, "library's")
    with qtbot.waitSignal(palette.library_block_activated, timeout=1000):
        qtbot.keyClick(palette.search, Qt.Key.Key_Return)
    palette.search.clear()
    qtbot.keyClicks(palette.search, "convbn")  # both match: Up and Down go between them
    assert palette.tree.currentItem() is library  # the current entry still matches
    qtbot.keyClick(palette.search, Qt.Key.Key_Up)
    assert palette.tree.currentItem() is design
    with qtbot.waitSignal(palette.block_activated, timeout=1000) as blocker:
        qtbot.keyClick(palette.search, Qt.Key.Key_Return)
    assert blocker.args == ["ConvBN"]


def test_a_library_drag_carries_the_library_mark(palette, qtbot, monkeypatch):
    palette.set_design_blocks(_user_specs(("Stem", "")))
    palette.set_library_blocks(_library_specs(("ConvBN", "")))
    design_mime = palette.tree.mimeData([palette.item_for("Stem", DESIGN)])
    assert bytes(design_mime.data(MIME_TYPE)).decode() == "Stem"
    assert library_block_name(design_mime) is None  # it is the design's already

    dragged: list[QMimeData] = []
    monkeypatch.setattr(QDrag, "exec",
                        lambda self, *a, **k: dragged.append(self.mimeData()) or 0)
    item = palette.item_for("ConvBN", LIBRARY)
    palette.tree.scrollToItem(item)
    start = palette.tree.visualItemRect(item).center()
    viewport = palette.tree.viewport()
    qtbot.mousePress(viewport, Qt.MouseButton.LeftButton, pos=start)
    distance = QApplication.startDragDistance() + 5
    for step in range(1, 4):
        qtbot.mouseMove(viewport, start + type(start)(step * distance, step * 2))
    qtbot.mouseRelease(viewport, Qt.MouseButton.LeftButton)
    assert len(dragged) == 1
    assert bytes(dragged[0].data(MIME_TYPE)).decode() == "ConvBN"  # the canvas takes it
    assert dragged[0].hasFormat(LIBRARY_MIME) and library_block_name(dragged[0]) == "ConvBN"


def _menu_actions(palette, item) -> dict:
    """The context menu of ``item``, its actions by text."""
    return {a.text(): a for a in palette.menu_for(item).actions()}


def test_context_menus_offer_save_and_remove(palette, qtbot):
    palette.set_design_blocks(_user_specs(("Stem", "")))
    palette.set_library_blocks(_library_specs(("ConvBN", "")))
    assert palette.menu_for(palette.item_for("Conv2d")) is None  # catalogue: no menu
    assert palette.menu_for(palette.tree.topLevelItem(0)) is None  # a header

    actions = _menu_actions(palette, palette.item_for("Stem", DESIGN))
    assert "Remove from Library…" not in actions
    with qtbot.waitSignal(palette.save_to_library_requested, timeout=1000) as blocker:
        actions["Save to Library…"].trigger()
    assert blocker.args == ["Stem"]

    actions = _menu_actions(palette, palette.item_for("ConvBN", LIBRARY))
    assert "Save to Library…" not in actions
    with qtbot.waitSignal(palette.remove_from_library_requested, timeout=1000) as blocker:
        actions["Remove from Library…"].trigger()
    assert blocker.args == ["ConvBN"]
    with qtbot.waitSignal(palette.library_block_activated, timeout=1000) as blocker:
        actions["Add to Design"].trigger()
    assert blocker.args == ["ConvBN"]


def test_refreshing_a_section_keeps_the_current_entry(palette):
    specs = _user_specs(("A", ""), ("B", ""))
    palette.set_design_blocks(specs)
    palette.tree.setCurrentItem(palette.item_for("B", DESIGN))
    palette.set_design_blocks(specs)  # e.g. after an edit inside A
    assert palette.tree.currentItem() is palette.item_for("B", DESIGN)
    palette.set_design_blocks(specs[:1])
    assert palette.tree.currentItem() is None or palette.tree.currentItem().text(0) != "B"


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
