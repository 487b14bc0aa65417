"""The canvas gets the room: the default 1600×1000 window, compact docks that the
Training dock leaves only while a run is watched, saved layouts of older versions
ignored, long networks fitted legibly, a palette double-click scrolled into view,
Save As naming an untitled design, runs kept in the user's data folder."""

from __future__ import annotations

import PySide6  # noqa: F401  (Qt before pyqtgraph, always)
import pytest
from PySide6.QtCore import QSettings, Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication, QDockWidget, QFileDialog, QMessageBox
from test_mainwindow import template_graph

from designer.mainwindow import MainWindow
from designer.run_folders import new_run_folder, runs_folder
from designer.templates import template_files
from engine import Graph
from engine.layout import layered_layout
from widgets.canvas.node_item import LEGIBLE_ZOOM, MIN_TITLE_PIXELS, fit_title

LEFT = Qt.MouseButton.LeftButton
CTRL = Qt.KeyboardModifier.ControlModifier


@pytest.fixture
def make_window(qtbot, tmp_path):
    """``make_window()``: a main window at the default 1600×1000 on these settings
    (the same settings each call, as a restarted application finds them)."""
    settings = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    made = []

    def make() -> MainWindow:
        w = MainWindow(settings=settings, recovery_dir=str(tmp_path / "recovery"))
        w.resize(1600, 1000)
        w.show()
        qtbot.waitExposed(w)
        w.activateWindow()
        QApplication.processEvents()
        made.append(w)
        return w

    yield make
    for w in made:
        if w.isVisible():
            close(w)


def close(w: MainWindow) -> None:
    w.training.shutdown()
    w.doc.undo_stack.setClean()
    w.close()
    QApplication.processEvents()


def bottom(w: MainWindow) -> int:
    """The height of the Layers / Problems / Training strip under the canvas."""
    QApplication.processEvents()
    return w.training_room.bottom_height()


def resize_bottom(w: MainWindow, height: int) -> None:
    """What dragging the splitter between the canvas and the strip does."""
    w.training_room.set_bottom_height(height)
    QApplication.processEvents()


def test_the_default_window_gives_the_canvas_most_of_the_room(make_window):
    w = make_window()
    canvas = w.canvas
    assert canvas.width() >= 0.6 * w.width() and canvas.height() >= 0.6 * w.height()
    assert bottom(w) <= 0.2 * w.height()   # the Layers / Problems / Training tabs
    # measured at 1600×1000: canvas 1098×754 (69 % × 75 %)


def test_training_dock_grows_for_a_run_and_keeps_the_users_size(make_window):
    w = make_window()
    dock = w.findChild(QDockWidget, "dock_training")
    compact = bottom(w)
    w.training.running_changed.emit(True)        # what a started run reports
    grown = bottom(w)
    assert dock.isVisible() and grown >= 0.4 * w.height() and grown > 2 * compact
    assert w.canvas.height() >= 0.3 * w.height()  # the design stays in view
    resize_bottom(w, 380)                         # the user's own size
    w.training.running_changed.emit(False)       # the run ends: the size stays
    assert bottom(w) == 380
    resize_bottom(w, compact)
    w.training.running_changed.emit(True)        # the next run: the user's size again
    assert bottom(w) == 380
    w.training.running_changed.emit(False)


def test_a_size_only_the_run_gave_is_not_saved_as_the_layout(make_window):
    w = make_window()
    compact = bottom(w)
    w.training.running_changed.emit(True)
    assert bottom(w) > 2 * compact
    w.training.running_changed.emit(False)
    close(w)
    assert bottom(make_window()) == compact


def test_saved_layouts_of_an_older_version_are_ignored(make_window):
    w = make_window()
    compact = bottom(w)
    resize_bottom(w, 500)
    old_state = w.saveState()          # what an earlier Convas saved (no version)
    close(w)
    w.settings.setValue("window_state", old_state)
    again = make_window()
    assert bottom(again) == compact
    resize_bottom(again, 400)
    close(again)                       # a layout of this version is the user's: kept
    assert abs(bottom(make_window()) - 400) <= 2


def _all_in_view(canvas) -> bool:
    seen = canvas.visible_scene_rect()
    return all(seen.contains(item.mapRectToScene(item.card_rect()))
               for item in canvas.scene_.nodes.values())


@pytest.mark.parametrize("name", ["mobilenetv2", "densenet121"])
def test_fit_all_shows_a_long_network_whole_and_legible(make_window, name):
    w = make_window()
    w.doc.new_from(template_graph(name))
    QApplication.processEvents()
    w.canvas.zoom_by(3.0)
    QTest.keyClick(w.canvas.viewport(), Qt.Key.Key_0, CTRL)
    QApplication.processEvents()
    assert w.canvas.current_scale() >= LEGIBLE_ZOOM
    assert _all_in_view(w.canvas)


def test_auto_layout_wraps_a_one_column_network_so_fit_all_is_legible(make_window):
    w = make_window()
    graph = template_graph("mobilenetv2")
    for node, pos in layered_layout(graph, page=None).items():   # 154 blocks, one column
        graph.set_pos(node, pos)
    w.doc.new_from(graph)
    QApplication.processEvents()
    w.canvas.fit_all()
    # one column of 154 blocks: the least zoom there is, and still not all of it
    assert w.canvas.current_scale() <= 0.1 and not _all_in_view(w.canvas)
    QTest.keyClick(w.canvas.viewport(), Qt.Key.Key_L, CTRL)   # Auto Layout
    QTest.keyClick(w.canvas.viewport(), Qt.Key.Key_0, CTRL)   # Fit All
    QApplication.processEvents()
    assert w.canvas.current_scale() >= LEGIBLE_ZOOM and _all_in_view(w.canvas)
    assert len({pos[0] for pos in map(w.doc.graph.pos_of, w.doc.graph.nodes)}) >= 5
    w.doc.undo()                                    # one undo step puts it back
    assert {w.doc.graph.pos_of(n)[0] for n in w.doc.graph.nodes} == {0}


def test_opening_a_network_that_fits_legibly_shows_it_whole_else_its_start(make_window,
                                                                           tmp_path):
    w = make_window()
    f = next(f for f in template_files() if f.name == "mobilenetv2.convas.json")
    assert w.open_file(str(f), ask=False)
    assert w.canvas.current_scale() >= LEGIBLE_ZOOM and _all_in_view(w.canvas)
    long = Graph("long")
    long.add_node("input", "Input")
    for i in range(400):                   # too long to read whole on any screen
        long.add_node(f"drop{i}", "Dropout")
        long.add_edge(f"drop{i - 1}" if i else "input", f"drop{i}")
    for node, pos in layered_layout(long).items():
        long.set_pos(node, pos)
    long.save(tmp_path / "long.convas.json")
    assert w.open_file(str(tmp_path / "long.convas.json"), ask=False)
    canvas, start = w.canvas, w.canvas.node_item("input")
    assert canvas.current_scale() > 0.8     # readable, from the input on
    seen = canvas.visible_scene_rect()
    card = start.mapRectToScene(start.card_rect())
    assert seen.contains(card) and card.left() - seen.left() < 0.2 * seen.width()


def test_titles_are_drawn_legibly_from_the_legible_zoom_up():
    for lod in (LEGIBLE_ZOOM, 0.45, 0.6):
        for title in ("b16_project_bn_x", "transition3_pool", "abcdefghijklmnop", "out"):
            size, lines = fit_title(title, lod, 168, 62)   # a card's room, zoomed out
            assert size * lod >= MIN_TITLE_PIXELS - 1e-6 and "".join(lines) == title
    size, lines = fit_title("a_very_long_block_name_indeed_x", 0.2, 168, 62)
    assert size * 0.2 == pytest.approx(MIN_TITLE_PIXELS)   # too long: cut, not shrunk


def test_a_block_added_from_the_palette_is_scrolled_into_view(make_window):
    w = make_window()
    w.doc.new_from(template_graph("lenet5"))
    QApplication.processEvents()
    canvas = w.canvas
    last = "out"
    canvas.select([last])
    card = canvas.node_item(last).mapRectToScene(canvas.node_item(last).card_rect())
    # the selected block at the very bottom of the view: the new one goes below it
    seen = canvas.visible_scene_rect()
    canvas.scroll_by(0, (card.bottom() + 4 - seen.bottom()) * canvas.current_scale())
    QApplication.processEvents()
    tree = w.palette.tree
    item = w.palette.item_for("Dropout")
    tree.scrollToItem(item)
    point = tree.visualItemRect(item).center()
    QTest.mouseClick(tree.viewport(), LEFT, Qt.KeyboardModifier.NoModifier, point)
    QTest.mouseDClick(tree.viewport(), LEFT, Qt.KeyboardModifier.NoModifier, point)
    QApplication.processEvents()
    (added,) = [n for n in w.doc.graph.nodes if w.doc.graph.type_of(n) == "Dropout"]
    new = canvas.node_item(added)
    assert w.doc.graph.pos_of(added)[1] > card.bottom()     # it went below ...
    assert canvas.visible_scene_rect().contains(new.mapRectToScene(new.card_rect()))
    assert canvas.visible_scene_rect().contains(card)       # ... its block still seen


def _save_dialog_returns(monkeypatch, path) -> None:
    monkeypatch.setattr(QFileDialog, "getSaveFileName",
                        staticmethod(lambda *a, **k: (str(path), "")))


def test_save_as_names_an_untitled_design_after_its_file(make_window, tmp_path,
                                                         monkeypatch):
    w = make_window()
    w.doc.add_block("Input")
    assert w.doc.graph.name == "Untitled"
    steps = w.doc.undo_stack.count()
    _save_dialog_returns(monkeypatch, tmp_path / "bird_classifier")   # no suffix typed
    assert w.save()                                  # a new design: Save is Save As
    assert w.doc.graph.name == "bird_classifier"
    saved = Graph.load(tmp_path / "bird_classifier.convas.json")
    assert saved.name == "bird_classifier"
    assert not w.doc.is_dirty and w.doc.undo_stack.count() == steps  # one step: the save
    assert "bird_classifier.convas.json" in w.windowTitle()
    _save_dialog_returns(monkeypatch, tmp_path / "copy.convas.json")
    assert w.save_as() and w.doc.graph.name == "bird_classifier"    # titled: kept


def test_save_as_keeps_a_templates_name_and_a_failed_save_changes_nothing(
        make_window, tmp_path, monkeypatch):
    w = make_window()
    w.doc.new_from(template_graph("x_vs_o"))
    title = w.doc.graph.name
    _save_dialog_returns(monkeypatch, tmp_path / "mine.convas.json")
    assert w.save_as() and w.doc.graph.name == title
    w.doc.new()
    w.doc.add_block("Input")
    errors = []
    monkeypatch.setattr(QMessageBox, "critical", lambda *a, **k: errors.append(a[2]))
    _save_dialog_returns(monkeypatch, tmp_path / "no" / "such" / "folder" / "x.convas.json")
    assert not w.save_as()
    assert errors and w.doc.graph.name == "Untitled" and w.doc.is_dirty


def test_runs_are_kept_in_the_users_data_folder(make_window, user_data, monkeypatch):
    from designer.training import TrainingController

    started = {}
    monkeypatch.setattr(TrainingController, "start",
                        lambda self, graph, config, out_dir, **k: started.update(out=out_dir))
    w = make_window()
    w.doc.new_from(template_graph("x_vs_o"))
    assert w.training.start()
    out = started["out"]
    assert out.is_dir() and not any(out.iterdir())
    assert out.parent.name == "runs" and user_data in out.parents
    assert out.name.startswith("x-vs-o-")
    second = new_run_folder("X vs O")                    # within the same second: apart
    assert second != out and second.parent == out.parent


def test_a_run_folder_that_cannot_be_made_is_said_in_the_panel(make_window):
    blocker = runs_folder()
    blocker.parent.mkdir(parents=True)
    blocker.write_text("a file where the runs folder should be")
    w = make_window()
    w.doc.new_from(template_graph("x_vs_o"))
    assert not w.training.start()
    assert w.training.controller is None or not w.training.is_running
    assert "No folder for the run" in w.training.panel.status.text()
