"""A design with blocks made of blocks (SPEC §9) opens in the application: each
instance is one block on the canvas, with its ports and its body's numbers. (Editing
inside a block, Group and Ungroup come with the editor's part of issue 13.)"""

from __future__ import annotations

import pytest
from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QApplication

from designer.mainwindow import MainWindow
from designer.templates import template_files
from engine import analyze


@pytest.mark.parametrize("name", ["vgg16_stages", "resnet18_blocks"])
def test_a_template_with_user_blocks_opens_and_shows_its_instances(qtbot, tmp_path, name):
    settings = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    w = MainWindow(settings=settings, recovery_dir=str(tmp_path / "recovery"))
    qtbot.addWidget(w)
    w.show()
    qtbot.waitExposed(w)
    f = next(f for f in template_files() if f.name == f"{name}.convas.json")
    assert w.open_file(str(f), ask=False)
    QApplication.processEvents()
    graph = w.doc.graph
    instances = [n for n in graph.nodes if graph.type_of(n) in graph.blocks]
    assert len(instances) in (4, 5)
    for n in instances:
        view = w.editor.node_view(n)
        assert view.type == graph.type_of(n) and view.inputs == 1 and view.error is None
        assert view.category == "This design"
    report = analyze(graph)
    assert report.errors == [] and w.doc.report.total_params == report.total_params


def test_an_instance_is_edited_rewired_and_added_like_any_block(window, qtbot):
    f = next(f for f in template_files() if f.name == "vgg16_stages.convas.json")
    assert window.open_file(str(f), ask=False)
    doc, graph = window.doc, window.doc.graph
    before = doc.report.total_params
    window.canvas.select(["stage1"])
    QApplication.processEvents()
    assert window.inspector.title.text() == "Stage2"        # its arguments, as parameters
    assert doc.set_param("stage1", "width", 32)
    assert doc.report.nodes["stage1"].output_shape[0] == 32
    assert doc.report.total_params != before and not doc.report.errors
    added = doc.add_block_after("Stage3", "stage5")          # a new instance, wired
    assert graph.type_of(added) == "Stage3" and graph.inputs_of(added) == [(0, "stage5")]
    doc.undo_stack.undo()
    doc.disconnect("stage1", "stage2", 0)
    assert doc.connect("stage1", "stage2") is not None      # into an instance's port
    for _ in range(3):                                       # connect, disconnect, width
        doc.undo_stack.undo()
    assert doc.report.total_params == before
