"""The palette's "This design" and "My blocks" sections in the window, and the personal
library behind them (designer.block_library_actions), driven as a person would."""

from __future__ import annotations

import copy
import json

import pytest
from PySide6.QtCore import QPoint, QPointF, QSettings, Qt, QTimer
from PySide6.QtGui import QDragEnterEvent, QDragMoveEvent, QDropEvent
from PySide6.QtWidgets import QApplication, QMessageBox

from designer.block_library_actions import install_block_library
from designer.mainwindow import MainWindow
from engine import Graph, analyze
from engine import block_library as lib
from widgets.palette import DESIGN, DESIGN_HINT, LIBRARY, LIBRARY_HINT, block_mime_data

CONV_BN = {
    "doc": "A 3×3 convolution and batch norm.",
    "params": {"width": {"type": "int", "default": 8, "min": 1, "doc": "filters"}},
    "nodes": [{"id": "x", "type": "Input", "params": {}},
              {"id": "conv", "type": "Conv2d",
               "params": {"out_channels": "$width", "kernel_size": 3, "padding": 1}},
              {"id": "bn", "type": "BatchNorm", "params": {}},
              {"id": "y", "type": "Output", "params": {}}],
    "edges": [{"from": "x", "to": "conv"}, {"from": "conv", "to": "bn"},
              {"from": "bn", "to": "y"}],
}
# a block using another one: the library file must bring ConvBN along
TWICE = {
    "params": {"width": {"type": "int", "default": 8, "min": 1}},
    "nodes": [{"id": "x", "type": "Input", "params": {}},
              {"id": "a", "type": "ConvBN", "params": {"width": "$width"}},
              {"id": "b", "type": "ConvBN", "params": {"width": "$width"}},
              {"id": "y", "type": "Output", "params": {}}],
    "edges": [{"from": "x", "to": "a"}, {"from": "a", "to": "b"}, {"from": "b", "to": "y"}],
}


def _design(blocks: dict | None = None, name: str = "with blocks") -> Graph:
    """input → [one instance of each block given] → gap → fc → output."""
    blocks = blocks or {}
    nodes = [{"id": "input", "type": "Input",
              "params": {"channels": 3, "height": 16, "width": 16}, "pos": [0, 0]}]
    chain = ["input"]
    for i, b in enumerate(blocks, 1):
        nodes.append({"id": f"{b.lower()}1", "type": b, "params": {"width": 4},
                      "pos": [0, 100 * i]})
        chain.append(f"{b.lower()}1")
    y = 100 * (len(blocks) + 1)
    nodes += [{"id": "gap", "type": "GlobalAvgPool", "params": {}, "pos": [0, y]},
              {"id": "fc", "type": "Linear", "params": {"out_features": 2}, "pos": [0, y + 100]},
              {"id": "out", "type": "Output", "params": {}, "pos": [0, y + 200]}]
    chain += ["gap", "fc", "out"]
    return Graph.from_dict({"format": "convas.graph", "version": 1, "name": name,
                            "blocks": copy.deepcopy(blocks), "nodes": nodes,
                            "edges": [{"from": a, "to": b}
                                      for a, b in zip(chain, chain[1:], strict=False)]})


@pytest.fixture
def library(tmp_path, monkeypatch):
    folder = tmp_path / "library"
    monkeypatch.setenv(lib.ENV_VAR, str(folder))
    return folder


@pytest.fixture
def new_window(qtbot, tmp_path):
    """``new_window(graph)``: another main window (as after a restart) showing ``graph``."""
    made = []

    def make(graph: Graph) -> MainWindow:
        n = len(made)
        settings = QSettings(str(tmp_path / f"settings{n}.ini"), QSettings.Format.IniFormat)
        w = MainWindow(settings=settings, recovery_dir=str(tmp_path / f"recovery{n}"))
        install_block_library(w)
        w.resize(1200, 800)
        w.show()
        qtbot.waitExposed(w)
        w.doc.new_from(graph)
        made.append(w)
        return w

    yield make
    for w in made:
        w.training.shutdown()
        w.doc.undo_stack.setClean()
        w.close()
        w.deleteLater()


def _answer(qtbot, button: str) -> list[str]:
    """Click ``button`` in the next message box that opens; returns its text when done."""
    seen: list[str] = []

    def click() -> None:
        box = QApplication.activeModalWidget()
        if not isinstance(box, QMessageBox):
            QTimer.singleShot(10, click)
            return
        seen.append(box.text())
        next(b for b in box.buttons() if b.text().replace("&", "") == button).click()

    QTimer.singleShot(0, click)
    return seen


def _double_click(qtbot, palette, item) -> None:
    palette.tree.scrollToItem(item)
    pos = palette.tree.visualItemRect(item).center()
    viewport = palette.tree.viewport()
    qtbot.mouseClick(viewport, Qt.MouseButton.LeftButton, pos=pos)
    qtbot.mouseDClick(viewport, Qt.MouseButton.LeftButton, pos=pos)


def _menu_action(palette, name: str, section: str, text: str):
    menu = palette.menu_for(palette.item_for(name, section))
    return next(a for a in menu.actions() if a.text() == text)


def test_this_design_lists_the_open_designs_blocks_and_follows_edits(
        window, library, qtbot):
    actions = install_block_library(window)
    assert install_block_library(window) is actions  # wired once, however often called
    palette = window.palette
    assert palette.section_hint(DESIGN) == DESIGN_HINT
    assert palette.section_hint(LIBRARY) == LIBRARY_HINT  # nothing saved yet

    window.doc.new_from(_design({"ConvBN": CONV_BN, "Twice": TWICE}))
    assert palette.design_blocks() == ["ConvBN", "Twice"]
    assert "A 3×3 convolution and batch norm." in palette.item_for("ConvBN", DESIGN).toolTip(0)

    # an edit that brings a block definition is followed, and so is its undo
    bigger = _design({"ConvBN": CONV_BN, "Twice": TWICE, "Other": CONV_BN})
    assert window.doc.replace_graph(bigger, "add Other")
    assert palette.design_blocks() == ["ConvBN", "Other", "Twice"]
    window.doc.undo_stack.undo()
    assert palette.design_blocks() == ["ConvBN", "Twice"]

    # a "This design" entry adds an instance like a catalogue block
    before = len(window.doc.graph)
    _double_click(qtbot, palette, palette.item_for("ConvBN", DESIGN))
    assert len(window.doc.graph) == before + 1
    window.doc.new()
    assert palette.section_hint(DESIGN) == DESIGN_HINT


def test_saved_block_is_offered_in_a_new_window_and_adds_in_one_undo_step(
        window, new_window, library, qtbot, tmp_path):
    install_block_library(window)
    window.doc.new_from(_design({"ConvBN": CONV_BN, "Twice": TWICE}))
    _menu_action(window.palette, "Twice", DESIGN, "Save to Library…").trigger()
    assert (library / "Twice.convas-block.json").exists()
    assert window.palette.library_blocks() == ["Twice"]
    assert "Saved Twice to your library" in window.statusBar().currentMessage()

    other = new_window(Graph.load("resources/templates/lenet5.convas.json"))
    palette, doc = other.palette, other.doc
    assert palette.library_blocks() == ["Twice"] and palette.design_blocks() == []
    assert "Twice" not in doc.graph.blocks
    first = doc.graph.nodes[0]  # the Input: the new block goes below it, wired from it
    other.canvas.select([first])
    steps, before = doc.undo_stack.count(), doc.graph.to_dict()
    _double_click(qtbot, palette, palette.item_for("Twice", LIBRARY))
    assert doc.undo_stack.count() == steps + 1  # definitions and instance: one step
    node = other.canvas.selected_nodes()[0]
    assert doc.graph.type_of(node) == "Twice" and doc.graph.inputs_of(node) == [(0, first)]
    assert list(doc.graph.blocks) == ["Twice", "ConvBN"]  # with the block it uses
    assert palette.design_blocks() == ["ConvBN", "Twice"]
    info = doc.report.nodes[node]
    assert info.error is None and info.output_shape[0] == 8  # Twice's default width
    assert "Add Twice from the library" in doc.undo_stack.undoText()

    other.activateWindow()  # the shortcut goes to the active window
    other.canvas.setFocus()
    qtbot.waitUntil(lambda: QApplication.activeWindow() is other, timeout=2000)
    qtbot.keyClick(other.canvas, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert doc.undo_stack.count() == steps + 1 and doc.undo_stack.index() == steps
    assert doc.graph.to_dict() == before  # instance and definitions gone together
    assert palette.design_blocks() == []
    qtbot.keyClick(other.canvas, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier
                   | Qt.KeyboardModifier.ShiftModifier)
    assert doc.graph.type_of(node) == "Twice"

    # the saved design needs no library: it opens, and analyses, with an empty one
    saved = tmp_path / "lenet_twice.convas.json"
    doc.save(str(saved))
    for f in library.iterdir():
        f.unlink()
    assert lib.list_library() == {}
    again = Graph.load(saved)
    assert not [e for e in analyze(again).errors if e.node == node]
    assert analyze(again).nodes[node].params == info.params > 0


def test_edit_menu_saves_the_selected_instance_and_asks_before_replacing(
        window, library, qtbot):
    install_block_library(window)
    window.doc.new_from(_design({"ConvBN": CONV_BN}))
    edit = next(a.menu() for a in window.menuBar().actions() if a.text() == "&Edit")
    action = next(a for a in edit.actions() if a.text() == "Save Block to &Library…")

    window.canvas.select(["gap"])  # no instance selected: says what to do, writes nothing
    action.trigger()
    assert "Select one block made of blocks" in window.statusBar().currentMessage()
    assert not library.exists()

    window.canvas.select(["convbn1"])
    action.trigger()
    path = library / "ConvBN.convas-block.json"
    written = path.read_text("utf-8")
    action.trigger()  # the same again: nothing to ask
    assert "unchanged" in window.statusBar().currentMessage()

    changed = copy.deepcopy(CONV_BN)
    changed["doc"] = "Changed since."
    window.doc.new_from(_design({"ConvBN": changed}))
    window.canvas.select(["convbn1"])
    asked = _answer(qtbot, "Cancel")
    action.trigger()
    assert asked and "already has a block ConvBN" in asked[0]
    assert path.read_text("utf-8") == written  # kept
    asked = _answer(qtbot, "Replace")
    action.trigger()
    assert asked and json.loads(path.read_text("utf-8"))["blocks"]["ConvBN"]["doc"] == \
        "Changed since."


def test_a_different_design_block_of_the_same_name_is_asked_about(
        window, new_window, library, qtbot):
    install_block_library(window)
    window.doc.new_from(_design({"ConvBN": CONV_BN}))
    window.block_library.save_block("ConvBN")
    mine = copy.deepcopy(CONV_BN)
    mine["params"]["width"]["default"] = 32
    other = new_window(_design({"ConvBN": mine}, "mine"))
    doc, palette = other.doc, other.palette
    item = palette.item_for("ConvBN", LIBRARY)
    steps = doc.undo_stack.count()

    asked = _answer(qtbot, "Cancel")
    _double_click(qtbot, palette, item)
    assert asked and "already has ConvBN" in asked[0]
    assert doc.undo_stack.count() == steps  # nothing added

    asked = _answer(qtbot, "Keep the Design's")
    other.canvas.select(["input"])  # the new instance comes wired from the input
    _double_click(qtbot, palette, item)
    node = other.canvas.selected_nodes()[0]
    assert doc.graph.type_of(node) == "ConvBN"
    assert doc.graph.blocks["ConvBN"].declarations["width"]["default"] == 32
    assert doc.report.nodes[node].output_shape[0] == 32
    assert "Kept this design's own ConvBN" in other.statusBar().currentMessage()

    asked = _answer(qtbot, "Use the Library's")
    other.canvas.select(["input"])
    _double_click(qtbot, palette, item)
    assert doc.graph.blocks["ConvBN"].declarations["width"]["default"] == 8
    assert doc.report.nodes[node].output_shape[0] == 8  # the earlier instance follows
    doc.undo_stack.undo()
    assert doc.graph.blocks["ConvBN"].declarations["width"]["default"] == 32


def test_dropping_a_library_block_on_the_canvas_adds_it_there(window, library, qtbot):
    install_block_library(window)
    window.doc.new_from(_design({"ConvBN": CONV_BN}))
    window.block_library.save_block("ConvBN")
    window.doc.new_from(_design())
    canvas = window.canvas
    target = QPoint(canvas.viewport().width() // 3, canvas.viewport().height() // 3)
    scene = canvas.scene_pos(QPointF(target))
    mime = block_mime_data("ConvBN", from_library=True)  # kept: the events do not own it
    # what a drag from the palette sends: enter, move (the canvas shows its ghost), drop
    args = (QPointF(target), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
            Qt.KeyboardModifier.NoModifier)
    enter = QDragEnterEvent(target, *args[1:])
    QApplication.sendEvent(canvas.viewport(), enter)
    assert enter.isAccepted()
    move = QDragMoveEvent(target, *args[1:])
    QApplication.sendEvent(canvas.viewport(), move)
    assert move.isAccepted() and canvas.has_interaction()  # the landing ghost
    drop = QDropEvent(*args)
    QApplication.sendEvent(canvas.viewport(), drop)
    assert drop.isAccepted() and not canvas.has_interaction()
    node = canvas.selected_nodes()[0]
    g = window.doc.graph
    assert [n for n in g.nodes if g.type_of(n) == "ConvBN"] == [node]  # taken once, not twice
    assert "ConvBN" in g.blocks and window.doc.undo_stack.count() == 1
    x, y = g.pos_of(node)
    assert abs(x - scene.x()) < 1 and abs(y - scene.y()) < 1


def test_remove_asks_and_broken_files_are_reported(window, library, qtbot):
    install_block_library(window)
    window.doc.new_from(_design({"ConvBN": CONV_BN, "Twice": TWICE}))
    window.block_library.save_block("ConvBN")
    window.block_library.save_block("Twice")
    palette = window.palette

    asked = _answer(qtbot, "Cancel")
    _menu_action(palette, "ConvBN", LIBRARY, "Remove from Library…").trigger()
    assert asked and palette.library_blocks() == ["ConvBN", "Twice"]
    asked = _answer(qtbot, "Remove")
    _menu_action(palette, "ConvBN", LIBRARY, "Remove from Library…").trigger()
    assert asked and "Remove ConvBN from your library?" in asked[0]
    assert palette.library_blocks() == ["Twice"]
    assert not (library / "ConvBN.convas-block.json").exists()
    assert "ConvBN" in window.doc.graph.blocks  # the design keeps its own

    (library / "Broken.convas-block.json").write_text("{not json", "utf-8")
    problems = window.block_library.refresh_library()
    assert len(problems) == 1 and "Broken.convas-block.json is not valid JSON" in problems[0]
    assert palette.library_blocks() == ["Twice"]  # the good one still there
    assert "Broken.convas-block.json" in window.statusBar().currentMessage()
