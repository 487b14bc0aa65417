"""The main window opens designs, shows their analysis and refuses broken files politely."""

from __future__ import annotations

import PySide6  # noqa: F401  (Qt before pyqtgraph, always)
from PySide6.QtWidgets import QMessageBox

from designer.mainwindow import MainWindow
from designer.templates import template_files


def test_template_menu_lists_every_template_and_opens_it(qtbot):
    window = MainWindow()
    qtbot.addWidget(window)
    menu = window.menuBar().actions()[0].menu()
    templates = next(a.menu() for a in menu.actions() if a.menu() is not None)
    names = [a.text() for a in templates.actions()]
    assert names == [f.name.removesuffix(".convas.json") for f in template_files()]
    assert "lenet5" in names
    templates.actions()[names.index("lenet5")].trigger()
    assert window.graph is not None and window.graph.name == "LeNet-5"
    assert window.table.rowCount() == len(window.graph)
    c1_row = next(r for r in range(window.table.rowCount())
                  if window.table.row_texts(r)[1] == "Conv2d")
    assert window.table.row_texts(c1_row)[2] == "[6, 28, 28]"
    assert "61,706 params" in window.totals.text()


def test_broken_file_shows_a_message_and_keeps_the_open_design(qtbot, tmp_path, monkeypatch):
    window = MainWindow()
    qtbot.addWidget(window)
    good = next(f for f in template_files() if f.name == "lenet5.convas.json")
    assert window.open_text(good.read_text("utf-8"), good.name)
    shown = []
    monkeypatch.setattr(QMessageBox, "warning", lambda *a, **k: shown.append(a[2]))
    bad = tmp_path / "bad.convas.json"
    bad.write_text('{"format": "convas.graph", "version": 99, "nodes": []}')
    assert not window.open_file(str(bad))
    assert "update Convas" in shown[0]
    assert window.graph.name == "LeNet-5"
