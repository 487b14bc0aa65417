"""Blocks made of blocks in the editor (SPEC §9, issue 13): Group with the mouse and
Ctrl+G, Ungroup, and editing inside an instance's body with the breadcrumb, all driven
with real mouse and key events on the window."""

from __future__ import annotations

import copy

from PySide6.QtCore import QPoint, QPointF, Qt, QTimer
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication, QDialogButtonBox, QSpinBox

from designer.block_text import shape_badge
from designer.group_dialog import GroupDialog, candidates
from designer.templates import template_files
from engine import Graph, analyze

CTRL = Qt.KeyboardModifier.ControlModifier
SHIFT = Qt.KeyboardModifier.ShiftModifier


def _chain() -> dict:
    """input → c1 → bn → relu → c2 → gap → fc → out, 160 apart vertically."""
    kinds = [("input", "Input", {"channels": 3, "height": 16, "width": 16}),
             ("c1", "Conv2d", {"out_channels": 8, "padding": 1}), ("bn", "BatchNorm", {}),
             ("relu", "Activation", {}), ("c2", "Conv2d", {"out_channels": 8}),
             ("gap", "GlobalAvgPool", {}), ("fc", "Linear", {"out_features": 4}),
             ("out", "Output", {})]
    nodes = [{"id": n, "type": t, "params": p, "pos": [0, 160 * i]}
             for i, (n, t, p) in enumerate(kinds)]
    edges = [{"from": a[0], "to": b[0]} for a, b in zip(kinds, kinds[1:], strict=False)]
    return {"format": "convas.graph", "version": 1, "name": "chain", "nodes": nodes,
            "edges": edges, "training": {}}


def _vgg(window) -> None:
    f = next(f for f in template_files() if f.name == "vgg16_stages.convas.json")
    assert window.open_file(str(f), ask=False)
    window.canvas.fit_all()
    QApplication.processEvents()


def _vp(canvas, scene_point: QPointF) -> QPoint:
    return canvas.mapFromScene(scene_point)


def _centre(canvas, node_id: str) -> QPointF:
    item = canvas.node_item(node_id)
    return item.mapToScene(item.card_rect().center())


def _click(canvas, node_id: str, double: bool = False) -> None:
    at = _vp(canvas, _centre(canvas, node_id))
    if double:
        QTest.mouseDClick(canvas.viewport(), Qt.MouseButton.LeftButton,
                          Qt.KeyboardModifier.NoModifier, at)
    else:
        QTest.mouseClick(canvas.viewport(), Qt.MouseButton.LeftButton,
                         Qt.KeyboardModifier.NoModifier, at)
    QApplication.processEvents()


def _rubber_band(canvas, ids: list[str]) -> None:
    rect = None
    for n in ids:
        item = canvas.node_item(n)
        r = item.mapRectToScene(item.card_rect())
        rect = r if rect is None else rect.united(r)
    a = _vp(canvas, rect.topLeft() - QPointF(30, 20))
    b = _vp(canvas, rect.bottomRight() + QPointF(30, 20))
    port = canvas.viewport()
    QTest.mousePress(port, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, a)
    for i in range(1, 7):
        QTest.mouseMove(port, a + (b - a) * i / 6)
    QTest.mouseRelease(port, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, b)


def _answer_group_dialog(qtbot, name: str, check: list[tuple[str, str]], seen: list) -> None:
    """When the Group dialog opens: type the name, tick parameters, press OK."""
    def answer() -> None:
        dialog = QApplication.activeModalWidget()
        if not isinstance(dialog, GroupDialog):
            QTimer.singleShot(20, answer)
            return
        seen.append(dialog)
        dialog.name.selectAll()
        QTest.keyClicks(dialog.name, name)
        for node, param in check:
            box, _ = dialog.row(node, param)
            QTest.mouseClick(box, Qt.MouseButton.LeftButton, pos=QPoint(6, box.height() // 2))
        ok = dialog.buttons.button(QDialogButtonBox.StandardButton.Ok)
        assert ok.isEnabled(), dialog.problem.text()
        QTest.mouseClick(ok, Qt.MouseButton.LeftButton)
    QTimer.singleShot(0, answer)


def test_rubber_band_and_ctrl_g_group_three_blocks_keeping_both_wires(window, qtbot):
    window.doc.new_from(Graph.from_dict(_chain()))
    window.canvas.fit_all()
    QApplication.processEvents()
    before = analyze(Graph.from_dict(_chain()))
    original = window.doc.to_dict()
    _rubber_band(window.canvas, ["bn", "relu", "c2"])
    assert sorted(window.canvas.selected_nodes()) == ["bn", "c2", "relu"]
    seen: list = []
    _answer_group_dialog(qtbot, "BnReluConv", [("c2", "out_channels")], seen)
    QTest.keyClick(window.canvas.viewport(), Qt.Key.Key_G, CTRL)
    qtbot.waitUntil(lambda: "BnReluConv" in window.doc.graph.blocks, timeout=10_000)
    assert seen, "the Group dialog did not open"
    g, report = window.doc.graph, window.doc.report
    (instance,) = [n for n in g.nodes if g.type_of(n) == "BnReluConv"]
    assert g.inputs_of(instance) == [(0, "c1")] and g.consumers_of(instance) == ["gap"]
    assert report.errors == []
    assert (report.total_params, report.output_shape) == (before.total_params,
                                                          before.output_shape)
    assert g.params_of(instance) == {"out_channels": 8}
    assert g.blocks["BnReluConv"].body.params_of("c2")["out_channels"] == "$out_channels"
    assert window.canvas.selected_nodes() == [instance]        # the new instance
    assert window.inspector.title.text() == "BnReluConv"
    # one undo step, exact
    assert window.doc.undo_stack.count() == 1
    window.activateWindow()   # the dialog was the active window
    qtbot.waitUntil(lambda: QApplication.activeWindow() is window, timeout=10_000)
    window.canvas.setFocus()
    QTest.keyClick(window.canvas.viewport(), Qt.Key.Key_Z, CTRL)
    assert window.doc.to_dict() == original
    assert set(window.canvas.scene_.nodes) == set(window.doc.graph.nodes)


def test_a_selection_that_cannot_be_one_block_says_why(window, qtbot):
    window.doc.new_from(Graph.from_dict(_chain()))
    window.canvas.select(["input", "c1"])
    assert window.editor.group_selection(answer=("Two", {})) is None
    assert "Input" in window.statusBar().currentMessage()
    assert window.doc.undo_stack.count() == 0


def test_edit_inside_changes_every_instance_and_undo_restores_it(window, qtbot):
    _vgg(window)
    doc, canvas = window.doc, window.canvas
    original, before = doc.to_dict(), doc.report.total_params
    convs = [n for n in doc.graph.nodes if doc.graph.type_of(n) == "Stage3"]
    assert len(convs) == 3
    _click(canvas, "stage3", double=True)                     # into Stage3's body
    assert doc.scope == ("stage3",)
    assert canvas.breadcrumb.labels()[1:] == ["Stage3"] and canvas.breadcrumb.isVisible()
    assert set(canvas.scene_.nodes) == {"x", "c1", "c2", "c3", "pool", "y"}
    # badges are those of the instance opened (its width and input), not of stage4's
    inner = {n: doc.report.nodes[n].inner["c1"].output_shape for n in convs}
    assert inner["stage3"] != inner["stage4"]
    assert window.editor.node_view("c1").shape == shape_badge(inner["stage3"])
    _click(canvas, "c1", double=True)                         # and into ConvReLU's
    assert canvas.breadcrumb.labels()[1:] == ["Stage3", "ConvReLU"]
    _click(canvas, "conv")
    assert window.inspector.title.text() == "Conv2d"
    editor = window.inspector.editor("kernel_size")
    spin = editor.inner.findChildren(QSpinBox)[0]
    spin.setFocus()
    spin.selectAll()
    QTest.keyClicks(spin, "5")
    QTest.keyClick(spin, Qt.Key.Key_Return)
    QApplication.processEvents()
    body = doc.graph.blocks["ConvReLU"].body
    assert body.params_of("conv")["kernel_size"] == 5
    assert window.editor.node_view("conv").shape == shape_badge(
        doc.report.nodes["stage3"].inner["c1"].inner["conv"].output_shape)
    # back to the design through the breadcrumb's first crumb
    QTest.mouseClick(canvas.breadcrumb.buttons[0], Qt.MouseButton.LeftButton)
    assert doc.scope == () and canvas.breadcrumb.isHidden()
    assert "stage3" in canvas.scene_.nodes
    expected = copy.deepcopy(original)
    for node in expected["blocks"]["ConvReLU"]["nodes"]:
        if node["id"] == "conv":
            node["params"]["kernel_size"] = 5
    fresh = analyze(Graph.from_dict(expected))
    assert doc.to_dict() == expected                          # the definition changed
    assert doc.report.total_params == fresh.total_params != before
    for n in convs:                                           # every instance followed
        assert doc.report.nodes[n].params == fresh.nodes[n].params
    window.editor.flush()
    assert f"{fresh.total_params:,} params" in window.totals.text()
    rows = {window.summary.node_id(r): window.summary.row_texts(r)
            for r in range(window.summary.rowCount())}
    assert any(f"{fresh.nodes['stage4'].params:,}" in t for t in rows["stage4"])
    QTest.keyClick(canvas.viewport(), Qt.Key.Key_Z, CTRL)    # undoes the inner edit
    assert doc.to_dict() == original and doc.report.total_params == before
    window.editor.flush()
    assert f"{before:,} params" in window.totals.text()


def test_ungroup_round_trip_with_keys(window, qtbot):
    _vgg(window)
    doc, canvas = window.doc, window.canvas
    original, numbers = doc.to_dict(), (doc.report.total_params, doc.report.output_shape)
    _click(canvas, "stage1")
    QTest.keyClick(canvas.viewport(), Qt.Key.Key_G, CTRL | SHIFT)
    assert "stage1" not in doc.graph
    added = sorted(canvas.selected_nodes())
    assert len(added) == 3 and all(doc.graph.type_of(n) in ("ConvReLU", "MaxPool2d")
                                   for n in added)
    assert (doc.report.total_params, doc.report.output_shape) == numbers
    assert doc.report.errors == []
    after = doc.to_dict()
    QTest.keyClick(canvas.viewport(), Qt.Key.Key_Z, CTRL)
    assert doc.to_dict() == original
    QTest.keyClick(canvas.viewport(), Qt.Key.Key_Z, CTRL | SHIFT)
    assert doc.to_dict() == after
    assert set(canvas.scene_.nodes) == set(doc.graph.nodes)


def test_escape_and_ctrl_up_go_up_and_an_argument_is_typed_in_the_inspector(window, qtbot):
    _vgg(window)
    doc, canvas = window.doc, window.canvas
    window.canvas.select(["stage2"])
    QTest.keyClick(canvas.viewport(), Qt.Key.Key_E, CTRL)     # Edit → Edit Block
    assert doc.scope == ("stage2",)
    _click(canvas, "c1", double=True)
    _click(canvas, "conv")
    editor = window.inspector.editor("out_channels")          # "$width" in ConvReLU
    assert editor.toggle.isChecked() and editor.line.text() == "$width"
    editor.line.selectAll()
    QTest.keyClicks(editor.line, "16")
    QTest.keyClick(editor.line, Qt.Key.Key_Return)
    assert doc.graph.blocks["ConvReLU"].body.params_of("conv")["out_channels"] == 16
    assert doc.report.nodes["stage2"].output_shape[0] == 16   # every conv: 16 channels
    assert not editor.toggle.isChecked()                      # a number: the spin box
    QTest.mouseClick(editor.toggle, Qt.MouseButton.LeftButton)  # back to the argument
    assert doc.graph.blocks["ConvReLU"].body.params_of("conv")["out_channels"] == "$width"
    canvas.setFocus()
    canvas.select([])
    QTest.keyClick(canvas.viewport(), Qt.Key.Key_Escape)      # nothing selected: go up
    assert doc.scope == ("stage2",) and canvas.selected_nodes() == ["c1"]
    QTest.keyClick(canvas.viewport(), Qt.Key.Key_Up, CTRL)
    assert doc.scope == () and canvas.selected_nodes() == ["stage2"]
    stack = doc.undo_stack                                    # going in and out: no step
    assert stack.count() and all(stack.text(i) == "Change conv.out_channels"
                                 for i in range(stack.count()))


def test_group_dialog_validates_the_name_and_argument_names(qtbot):
    g = Graph.from_dict(_chain())
    g2 = Graph.from_dict({**_chain(), "blocks": {"Taken": {
        "params": {}, "nodes": [{"id": "x", "type": "Input"}, {"id": "y", "type": "Output"}],
        "edges": [{"from": "x", "to": "y"}]}}})
    for graph in (g, g2):
        dialog = GroupDialog(graph, ["c1", "bn", "c2"])
        qtbot.addWidget(dialog)
        ok = dialog.buttons.button(QDialogButtonBox.StandardButton.Ok)
        assert ok.isEnabled() and dialog.name.text() == "ConvBN"
        for bad, why in (("Conv2d", "built-in"), ("1st", "letters"), ("", "name")):
            dialog.name.setText(bad)
            assert not ok.isEnabled() and why in dialog.problem.text()
        dialog.name.setText("Taken")
        assert ok.isEnabled() is (graph is g)
        dialog.name.setText("Mine")
        # both convolutions have kernel_size: the arguments are named after the block
        box1, name1 = dialog.row("c1", "kernel_size")
        box2, name2 = dialog.row("c2", "kernel_size")
        assert (name1.text(), name2.text()) == ("c1_kernel_size", "c2_kernel_size")
        assert dialog.row("bn", "momentum")[1].text() == "momentum"
        box1.setChecked(True)
        box2.setChecked(True)
        assert ok.isEnabled()
        name2.setText("c1_kernel_size")
        assert not ok.isEnabled() and "Two arguments" in dialog.problem.text()
        name2.setText("k2")
        assert dialog.result_value() == ("Mine", {"c1_kernel_size": ("c1", "kernel_size"),
                                                  "k2": ("c2", "kernel_size")})
    # an argument of the outer block is no candidate inside its body
    inside = Graph.from_dict(_chain())
    inside.set_param("c1", "out_channels", "$w")
    assert ("c1", "out_channels") not in {(n, p) for n, p, _, _ in
                                          candidates(inside, ["c1"])}


def test_the_suggested_name_reads_as_people_name_such_blocks():
    from designer.group_dialog import default_name
    from designer.templates import template_files

    f = next(f for f in template_files() if f.name == "lenet5.convas.json")
    lenet = Graph.loads(f.read_text("utf-8"), f.name)
    assert default_name(lenet, ["s2", "tanh1", "c1"]) == "ConvTanhPool"   # graph order
    assert default_name(lenet, ["f5", "tanh3"]) == "LinearTanh"
