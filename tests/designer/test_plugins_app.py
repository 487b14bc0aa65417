"""Plug-in blocks in the application (SPEC §9): loaded at start, in the palette (new
categories too) and the inspector like any block; broken ones in the Problems list and
a status-bar message that name the file and the reason."""

from __future__ import annotations

import PySide6  # noqa: F401  (Qt before pyqtgraph, always)
import pytest
import shiboken6
from plugin_samples import BROKEN_REASONS, isolate, write_broken, write_good
from PySide6.QtCore import QSettings, Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication, QComboBox, QSpinBox

from designer.mainwindow import MainWindow
from engine.plugins import load_plugins, loaded_blocks, unload_plugins
from widgets.palette import TYPE_ROLE


@pytest.fixture
def folders(tmp_path, monkeypatch):
    found = {"good": write_good(tmp_path / "good"), "broken": write_broken(tmp_path / "broken")}
    isolate(monkeypatch, tmp_path / "home", found["broken"], found["good"])
    yield found
    unload_plugins()


@pytest.fixture
def window(qtbot, tmp_path, folders):
    load_plugins()  # what the application does at start, before its window
    settings = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    w = MainWindow(settings=settings, recovery_dir=str(tmp_path / "recovery"))
    w.resize(1400, 900)
    w.show()
    qtbot.waitExposed(w)
    yield w
    w.training.shutdown()
    w.doc.undo_stack.setClean()
    w.close()
    shiboken6.delete(w)  # no palette may outlive the plug-ins it lists


def _group_of(palette, type_name: str) -> str:
    return palette.item_for(type_name).parent().text(0)


def test_plugin_blocks_are_in_the_palette_and_the_inspector(window, qtbot):
    palette, inspector, doc = window.palette, window.inspector, window.doc
    assert _group_of(palette, "GroupNorm") == "Normalisation"  # beside BatchNorm
    assert _group_of(palette, "GatedSum") == "Gates"           # a category of its own
    assert "Normalises groups of channels." in palette.item_for("GroupNorm").toolTip(0)
    assert "num_groups" in palette.item_for("GroupNorm").toolTip(0)
    assert not palette.item_for("GatedSum").icon(0).isNull()
    assert palette.item_for("Pool3s2").data(0, TYPE_ROLE) == "Pool3s2"
    # search and Enter add the block, as for a built-in one
    qtbot.keyClicks(palette.search, "groupnorm")
    assert palette.visible_blocks() == ["GroupNorm"]
    QTest.keyClick(palette.search, Qt.Key.Key_Return)
    QApplication.processEvents()
    assert doc.graph.nodes == ["groupnorm1"] and doc.graph.type_of("groupnorm1") == "GroupNorm"
    window.canvas.select(["groupnorm1"])
    QApplication.processEvents()
    assert inspector.node_id == "groupnorm1" and inspector.param_names() == ["num_groups"]
    spin = inspector.editor("num_groups").findChild(QSpinBox)
    assert spin.minimum() == 1 and spin.value() == 8
    spin.setFocus()
    spin.selectAll()
    QTest.keyClicks(spin, "4")
    QTest.keyClick(spin, Qt.Key.Key_Return)
    QApplication.processEvents()
    assert doc.graph.params_of("groupnorm1") == {"num_groups": 4}
    assert window.canvas.node_item("groupnorm1").view.subtitle == "num_groups 4"
    # a str parameter with choices gets a combo box; a two-input block two ports
    pool = window.editor.add_block_below_selection("Pool3s2")
    window.canvas.select([pool])
    QApplication.processEvents()
    combo = inspector.editor("mode").findChild(QComboBox)
    assert [combo.itemText(i) for i in range(combo.count())] == ["avg", "max"]
    gate = window.editor.add_block_below_selection("GatedSum")
    assert window.canvas.node_item(gate).view.inputs == 2


def test_broken_plugins_are_in_problems_and_the_status_bar(window, folders):
    window.editor.flush()
    problems = window.problems
    lines = [problems.item(i).text() for i in range(problems.count())]
    for name, reason in BROKEN_REASONS.items():
        assert any(str(folders["broken"] / name) in line and reason in line
                   for line in lines), (name, lines)
    status = window.statusBar().currentMessage()
    first = sorted(BROKEN_REASONS)[0]  # files load in name order
    assert status.startswith(f"plug-in not loaded: {folders['broken'] / first}: ")
    assert BROKEN_REASONS[first] in status and "(and 3 more: see Problems)" in status
    # the rest of the catalogue works: a template analyses, a good plug-in is usable
    window.editor.add_block_below_selection("Conv2d")
    window.editor.add_block_below_selection("GroupNorm")
    assert {"Conv2d", "GroupNorm"} <= {window.doc.graph.type_of(n)
                                       for n in window.doc.graph.nodes}


def test_the_application_loads_plugins_at_start(qapp, tmp_path, folders, monkeypatch):
    """``run_app`` (what ``convas`` runs) loads them before it builds the window."""
    import designer.mainwindow
    from designer.app import run_app

    seen = {}

    class Window(MainWindow):
        def __init__(self, *args, **kwargs) -> None:
            super().__init__(*args, recovery_dir=str(tmp_path / "recovery"), **kwargs)
            seen["palette"] = self.palette.visible_blocks()
            seen["status"] = self.statusBar().currentMessage()
            seen["window"] = self

        def set_theme(self, dark) -> None:  # keep the application's theme for other tests
            pass

    monkeypatch.setattr(designer.mainwindow, "MainWindow", Window)
    monkeypatch.setattr(qapp, "setApplicationName", lambda name: None)
    monkeypatch.setattr(qapp, "setOrganizationName", lambda name: None)
    unload_plugins()
    assert run_app(None, screenshot=str(tmp_path / "shot.png")) == 0
    shiboken6.delete(seen.pop("window"))
    assert {"GroupNorm", "GatedSum", "Pool3s2"} <= set(seen["palette"])
    assert seen["status"].startswith("plug-in not loaded: ")
    assert set(loaded_blocks()) == {"GroupNorm", "GatedSum", "Pool3s2", "Passthrough"}
