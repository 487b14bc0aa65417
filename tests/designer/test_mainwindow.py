"""The whole editor driven as a person drives it: palette drops, wire drags, Delete,
Ctrl+Z, inspector edits, errors on the block that causes them."""

from __future__ import annotations

import PySide6  # noqa: F401  (Qt before pyqtgraph, always)
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtGui import QAction, QDragEnterEvent, QDragMoveEvent, QDropEvent
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication, QComboBox, QMessageBox, QSpinBox

from designer.templates import template_files
from engine import Graph
from widgets.palette import block_mime_data

LEFT = Qt.MouseButton.LeftButton
NONE = Qt.KeyboardModifier.NoModifier
CTRL = Qt.KeyboardModifier.ControlModifier


def normalised(d: dict) -> dict:
    d = dict(d)
    d["nodes"] = sorted(d["nodes"], key=lambda n: n["id"])
    d["edges"] = sorted(d["edges"], key=lambda e: (e["from"], e["to"], e.get("port", 0)))
    return d


def template_graph(name: str) -> Graph:
    f = next(f for f in template_files() if f.name == f"{name}.convas.json")
    return Graph.loads(f.read_text("utf-8"), f.name)


def drop_block(canvas, type_name: str, scene_point: QPointF) -> None:
    """What a drag from the palette delivers to the canvas (QDrag.exec itself blocks in
    a nested event loop, so the drop is sent the way Qt sends it)."""
    mime = block_mime_data(type_name)
    pos = canvas.mapFromScene(scene_point)
    port = canvas.viewport()
    actions = Qt.DropAction.CopyAction
    for event in (QDragEnterEvent(pos, actions, mime, LEFT, NONE),
                  QDragMoveEvent(pos, actions, mime, LEFT, NONE),
                  QDropEvent(QPointF(pos), actions, mime, LEFT, NONE)):
        QApplication.sendEvent(port, event)


def mouse_drag(canvas, start: QPointF, end: QPointF, steps: int = 8) -> None:
    port = canvas.viewport()
    a, b = canvas.mapFromScene(start), canvas.mapFromScene(end)
    QTest.mousePress(port, LEFT, NONE, a)
    for i in range(1, steps + 1):
        QTest.mouseMove(port, a + (b - a) * i / steps)
    QTest.mouseRelease(port, LEFT, NONE, b)


def choose(editor, text: str) -> None:
    """Pick ``text`` in a parameter editor's combo box, as a click on the item does."""
    combo = editor.findChild(QComboBox)
    index = next(i for i in range(combo.count()) if combo.itemText(i) == text)
    combo.setCurrentIndex(index)
    QApplication.processEvents()


def type_number(editor, number: int) -> None:
    """Select the spin box's text and type ``number``, as a person does."""
    spin = editor.findChild(QSpinBox)
    spin.setFocus()
    spin.selectAll()
    QTest.keyClicks(spin, str(number))
    QTest.keyClick(spin, Qt.Key.Key_Return)
    QApplication.processEvents()


def shape_text(shape) -> str:
    return "[" + ", ".join(map(str, shape)) + "]"


def key(window, k, mods=NONE) -> None:
    QTest.keyClick(window.canvas.viewport(), k, mods)
    QApplication.processEvents()


def test_drop_from_palette_creates_the_block_at_the_drop_point(window):
    canvas = window.canvas
    target = canvas.mapToScene(QPoint(400, 300))
    drop_block(canvas, "Conv2d", QPointF(target))
    (node,) = window.doc.graph.nodes
    assert window.doc.graph.type_of(node) == "Conv2d"
    x, y = window.doc.graph.pos_of(node)
    assert abs(x - target.x()) < 2 and abs(y - target.y()) < 2
    assert canvas.node_item(node) is not None


def test_wire_drag_delete_and_undo_restore_the_document_exactly(window):
    doc, canvas = window.doc, window.canvas
    drop_block(canvas, "Input", QPointF(0, 0))
    drop_block(canvas, "Conv2d", QPointF(0, 200))
    a, b = doc.graph.nodes
    canvas.fit_all()
    QApplication.processEvents()
    before = normalised(doc.to_dict())
    mouse_drag(canvas, canvas.port_scene_pos(a, None), canvas.port_scene_pos(b, 0))
    assert [(e.src, e.dst, e.port) for e in doc.graph.edges()] == [(a, b, 0)]
    assert doc.report.nodes[b].output_shape == (16, 32, 32)
    with_edge = normalised(doc.to_dict())
    canvas.select([b])
    key(window, Qt.Key.Key_Delete)
    assert b not in doc.graph and doc.graph.edges() == []
    key(window, Qt.Key.Key_Z, CTRL)
    assert normalised(doc.to_dict()) == with_edge
    key(window, Qt.Key.Key_Z, CTRL)
    assert normalised(doc.to_dict()) == before
    key(window, Qt.Key.Key_Z, CTRL | Qt.KeyboardModifier.ShiftModifier)
    assert normalised(doc.to_dict()) == with_edge


def test_inspector_kernel_change_updates_badges_downstream(window):
    window.doc.new_from(template_graph("x_vs_o"))
    canvas, inspector, doc = window.canvas, window.inspector, window.doc
    canvas.select(["conv1"])
    QApplication.processEvents()
    assert inspector.node_id == "conv1"
    choose(inspector.editor("padding"), "valid")
    assert doc.graph.params_of("conv1")["padding"] == "valid"
    downstream = ["conv1", "bn1", "relu1", "pool1", "conv2", "bn2", "relu2", "pool2", "conv3",
                  "bn3", "relu3", "pool3", "flatten"]
    before = {n: canvas.node_item(n).view.shape for n in downstream}
    fc_params = canvas.node_item("fc").view.params
    type_number(inspector.editor("kernel_size"), 13)
    assert doc.graph.params_of("conv1")["kernel_size"] == 13
    assert doc.report.nodes["conv1"].output_shape == (8, 20, 20)
    for n in downstream:  # every block below shows its new shape
        badge = canvas.node_item(n).view.shape
        assert badge != before[n] and badge == shape_text(doc.report.nodes[n].output_shape)
    assert canvas.node_item("fc").view.params != fc_params  # Linear(in) follows Flatten


def test_impossible_edit_shows_the_error_on_its_block_and_in_problems(window, qtbot):
    window.doc.new_from(template_graph("x_vs_o"))
    window.canvas.select(["conv3"])
    type_number(window.inspector.editor("kernel_size"), 9)
    choose(window.inspector.editor("padding"), "valid")
    qtbot.waitUntil(lambda: window.problems.count() > 0, timeout=10_000)
    view = window.canvas.node_item("conv3").view
    assert view.error and "larger than" in view.error
    texts = [window.problems.item(i).text() for i in range(window.problems.count())]
    assert any("conv3" in t and "larger than" in t for t in texts)
    assert window.canvas.node_item("fc").view.error is None  # downstream: no shape, no error
    assert window.canvas.node_item("fc").view.shape == "?"


def test_title_marks_unsaved_work_and_save_clears_it(window, tmp_path):
    drop_block(window.canvas, "Input", QPointF(0, 0))
    assert window.windowTitle().startswith("Untitled *")
    path = tmp_path / "net.convas.json"
    assert window._save_to(str(path))
    assert window.windowTitle().startswith("net.convas.json —")
    assert Graph.load(path).nodes == window.doc.graph.nodes


def test_broken_file_gets_a_dialog_and_the_design_stays(window, tmp_path, monkeypatch):
    window.doc.new_from(template_graph("lenet5"))
    shown = []
    monkeypatch.setattr(QMessageBox, "warning", lambda *a, **k: shown.append(a[2]))
    bad = tmp_path / "bad.convas.json"
    bad.write_text('{"format": "convas.graph", "version": 99, "nodes": []}')
    assert not window.open_file(str(bad), ask=False)
    assert "update Convas" in shown[0]
    assert window.doc.graph.name == "LeNet-5"


def test_template_menu_lists_every_template(window):
    menu = window.menuBar().actions()[0].menu()
    templates = next(a.menu() for a in menu.actions() if a.menu() is not None)
    names = [a.text() for a in templates.actions()]
    assert len(names) == len(template_files()) and "ResNet-18" in names
    templates.actions()[names.index("ResNet-18")].trigger()
    assert window.doc.graph.name == "ResNet-18"
    assert window.canvas.node_item("layer4_1") is not None
    assert "11,689,512 params" in window.totals.text()


def test_screenshot_option_writes_a_png(tmp_path):
    import subprocess
    import sys

    out = tmp_path / "shot.png"
    f = next(f for f in template_files() if f.name == "resnet18.convas.json")
    run = subprocess.run([sys.executable, "-m", "designer", "--screenshot", str(out), str(f)],
                         capture_output=True, text=True, timeout=120,
                         env={**__import__("os").environ, "QT_QPA_PLATFORM": "offscreen",
                              "HOME": str(tmp_path)})
    assert run.returncode == 0, run.stderr
    from PySide6.QtGui import QImage

    image = QImage(str(out))
    assert (image.width(), image.height()) == (1600, 1000)


def test_copy_paste_at_the_cursor_and_duplicate(window):
    window.doc.new_from(template_graph("lenet5"))
    window.canvas.select(["c1", "tanh1"])
    window.editor.copy()
    window.editor.paste((900.0, 50.0))
    new = [n for n in window.doc.graph.nodes if n not in template_graph("lenet5")]
    assert len(new) == 2 and set(window.canvas.selected_nodes()) == set(new)
    xs = sorted(window.doc.graph.pos_of(n) for n in new)
    assert xs[0] == (900.0, 50.0)
    assert len([e for e in window.doc.graph.edges() if e.src in new and e.dst in new]) == 1
    key(window, Qt.Key.Key_D, CTRL)
    assert len(window.doc.graph) == len(template_graph("lenet5")) + 4


def test_memory_estimate_follows_the_designs_batch_size(window):
    window.doc.new_from(template_graph("x_vs_o"))          # trains at batch 64
    assert "at batch 64" in window.totals.text()
    window.training.panel.batch_size.setValue(256)       # an edit of the training key
    assert window.doc.graph.training["batch_size"] == 256
    text = window.totals.text()
    assert "at batch 256" in text
    expected = window.doc.report.memory(batch_size=256, optimizer="adam").describe()
    assert expected.split(" (")[0] in text
    window.doc.undo()
    assert "at batch 64" in window.totals.text()


def test_dragging_a_wire_end_to_another_block_is_one_undo_step(window):
    doc, canvas = window.doc, window.canvas
    drop_block(canvas, "Input", QPointF(0, 0))
    drop_block(canvas, "Conv2d", QPointF(-150, 200))
    drop_block(canvas, "MaxPool2d", QPointF(150, 200))
    a, b, c = doc.graph.nodes
    doc.connect(a, b)
    canvas.fit_all()
    QApplication.processEvents()
    before = normalised(doc.to_dict())
    mouse_drag(canvas, canvas.port_scene_pos(b, 0), canvas.port_scene_pos(c, 0))
    assert [(e.src, e.dst, e.port) for e in doc.graph.edges()] == [(a, c, 0)]
    key(window, Qt.Key.Key_Z, CTRL)                  # one step back: the wire as it was
    assert normalised(doc.to_dict()) == before


def test_onnx_export_runs_in_a_child_while_the_window_keeps_working(window, tmp_path,
                                                                     monkeypatch):
    from PySide6.QtCore import QTimer

    window.doc.new_from(template_graph("x_vs_o"))
    ticks = []
    timer = QTimer(interval=10)
    timer.timeout.connect(lambda: ticks.append(1))
    timer.start()
    assert window.export("onnx", str(tmp_path / "xo.onnx"))
    timer.stop()
    assert (tmp_path / "xo.onnx").stat().st_size > 10_000
    message = window.statusBar().currentMessage()
    assert "onnxruntime agrees" in message and "untrained weights" in message
    assert len(ticks) >= 20          # the export took seconds; the event loop never stopped
    warnings = []
    monkeypatch.setattr(QMessageBox, "warning",
                        staticmethod(lambda parent, title, text: warnings.append(text)))
    assert not window.export("onnx", str(tmp_path / "no" / "such" / "dir" / "xo.onnx"))
    assert len(warnings) == 1 and "does not exist" in warnings[0]
    assert window._export_menu.isEnabled()


def test_an_empty_canvas_says_how_to_start(window):
    hint = window.canvas.empty_hint
    assert hint.isVisible() and "palette" in hint.text() and "Template" in hint.text()
    drop_block(window.canvas, "Input", QPointF(0, 0))
    assert not hint.isVisible()
    window.doc.undo()
    assert hint.isVisible()
    window.doc.new_from(template_graph("x_vs_o"))
    assert not hint.isVisible()


def test_actions_on_the_selection_are_greyed_out_while_nothing_is_selected(window, qtbot):
    window.doc.new_from(template_graph("x_vs_o"))
    names = ("&Group…", "Free&ze / Unfreeze Selection", "Freeze Up to &Here", "&Duplicate",
             "Edit &Block", "&Copy")
    actions = {a.text(): a for a in window.findChildren(QAction) if a.text() in names}
    assert set(actions) == set(names)
    window.canvas.select([])
    assert not any(a.isEnabled() for a in actions.values())
    window.canvas.select(["conv1"])
    assert all(a.isEnabled() for a in actions.values())
    window.canvas.select([])
    assert not actions["&Group…"].isEnabled()
    assert next(a for a in window.findChildren(QAction) if a.text() == "U&nfreeze All"
                ).isEnabled()    # not a selection's: stays on
