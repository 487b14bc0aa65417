"""Fine-tuning in the application (SPEC §8): the inspector's Freeze toggle, the lock
badge, the trainable count in the status bar and the Layers table, Edit → Freeze Up to
Here / Unfreeze All as single undo steps, frozen blocks kept by save and load, and a
run started from a checkpoint (Training panel: Start from weights) saying which blocks
took its weights."""

from __future__ import annotations

import json

import PySide6  # noqa: F401  (Qt before torch-using modules)
from dock_helpers import train_from_dock
from PySide6.QtCore import Qt
from PySide6.QtGui import QImage, QPainter
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QStyle, QStyleOptionButton, QStyleOptionGraphicsItem

from designer.document import Document
from designer.templates import template_files
from designer.training_dock import init_summary
from engine import Graph
from engine.units import human_count


def template(name: str) -> Graph:
    f = next(f for f in template_files() if f.name == f"{name}.convas.json")
    return Graph.loads(f.read_text("utf-8"), f.name)


def action(window, text: str):
    """An Edit-menu action by its text without the & shortcut marker."""
    for a in window.menuBar().actions():
        for sub in a.menu().actions() if a.menu() else []:
            if sub.text().replace("&", "") == text:
                return sub
    raise LookupError(text)


def click_checkbox(box) -> None:
    """Click where the check mark is drawn, as a person does."""
    opt = QStyleOptionButton()
    box.initStyleOption(opt)
    rect = box.style().subElementRect(QStyle.SubElement.SE_CheckBoxIndicator, opt, box)
    QTest.mouseClick(box, Qt.MouseButton.LeftButton, pos=rect.center())


def render(item) -> QImage:
    image = QImage(int(item.boundingRect().width()), int(item.boundingRect().height()),
                   QImage.Format.Format_ARGB32)
    image.fill(0)
    painter = QPainter(image)
    painter.translate(-item.boundingRect().topLeft())
    item.paint(painter, QStyleOptionGraphicsItem())
    painter.end()
    return image


def layers_type(window, node: str) -> str:
    window.editor.flush()
    table = window.summary
    row = next(r for r in range(table.rowCount()) if table.node_id(r) == node)
    return table.row_texts(row)[1]


def test_freeze_toggle_badge_counts_and_undo(window, qtbot):
    window.doc.new_from(template("lenet5"))
    report = window.doc.report
    total, c1 = report.total_params, report.nodes["c1"].params
    assert c1 > 0
    plain_status = window.totals.text()
    assert plain_status.startswith(f"{total:,} params ({human_count(total)}) · ")
    window.canvas.select(["c1"])
    box = window.inspector.freeze
    assert box.isVisible() and not box.isChecked()
    item = window.canvas.node_item("c1")
    before = render(item)
    assert item.lock_rect() is None

    click_checkbox(box)
    assert window.doc.graph.is_frozen("c1") and box.isChecked()
    assert window.doc.graph.frozen_nodes() == {"c1"}
    assert item.view.frozen and item.lock_rect() is not None
    assert "Frozen" in item.toolTip()
    lock = item.lock_rect().translated(-item.boundingRect().topLeft()).toRect()
    after = render(item)
    assert any(before.pixel(x, y) != after.pixel(x, y)          # the lock is drawn there
               for x in range(lock.left(), lock.right()) for y in range(lock.top(), lock.bottom()))
    assert window.totals.text().startswith(f"{total:,} params ({total - c1:,} trainable) · ")
    assert layers_type(window, "c1") == "Conv2d (frozen)"
    assert layers_type(window, "c3") == "Conv2d"

    # a second block: its own undo step, nothing merges
    window.canvas.select(["f5"])
    assert not window.inspector.freeze.isChecked()
    click_checkbox(window.inspector.freeze)
    f5 = report.nodes["f5"].params
    assert window.totals.text().startswith(f"{total:,} params ({total - c1 - f5:,} trainable)")
    stack = window.doc.undo_stack
    assert stack.count() == 2 and stack.undoText() == "Freeze f5"
    window.doc.undo()
    assert window.doc.graph.frozen_nodes() == {"c1"} and not window.inspector.freeze.isChecked()
    window.doc.undo()
    assert window.doc.graph.frozen_nodes() == frozenset()
    assert window.totals.text() == plain_status
    assert not item.view.frozen and layers_type(window, "c1") == "Conv2d"
    window.doc.redo()
    assert window.doc.graph.frozen_nodes() == {"c1"} and window.canvas.node_item("c1").view.frozen
    # unticking in the inspector unfreezes
    window.canvas.select(["c1"])
    click_checkbox(window.inspector.freeze)
    assert not window.doc.graph.is_frozen("c1")


def test_freeze_up_to_here_and_unfreeze_all_on_lenet(window):
    window.doc.new_from(template("lenet5"))
    g = window.doc.graph
    window.canvas.select(["f5"])
    action(window, "Freeze Up to Here").trigger()
    order = g.nodes
    assert g.frozen_nodes() == set(order[:order.index("f5") + 1])   # input … f5
    assert not g.frozen_nodes() & {"tanh3", "f6", "tanh4", "f7", "out"}
    report = window.doc.report
    expected = sum(report.nodes[n].params for n in ("f6", "f7"))
    assert report.trainable_params == expected
    assert window.totals.text().startswith(f"{report.total_params:,} params "
                                           f"({expected:,} trainable)")
    assert window.doc.undo_stack.count() == 1
    action(window, "Unfreeze All").trigger()
    assert g.frozen_nodes() == frozenset() and window.doc.undo_stack.count() == 2
    window.doc.undo()
    assert "f5" in window.doc.graph.frozen_nodes() and len(window.doc.graph.frozen_nodes()) == 9
    # Freeze / Unfreeze Selection on several blocks: one step, then back
    window.canvas.select(["f6", "f7"])
    action(window, "Freeze / Unfreeze Selection").trigger()
    assert {"f6", "f7"} <= window.doc.graph.frozen_nodes()
    action(window, "Freeze / Unfreeze Selection").trigger()
    assert not {"f6", "f7"} & window.doc.graph.frozen_nodes()


def test_freeze_up_to_takes_ancestors_only_and_survives_save_and_load(qtbot, tmp_path):
    doc = Document()
    a = doc.add_block("Input")
    left = doc.add_block_after("Conv2d", a)
    right = doc.add_block_after("Conv2d", a)
    add = doc.add_block("Add")
    doc.connect(left, add)
    doc.connect(right, add)
    after = doc.add_block_after("Conv2d", add)
    assert doc.freeze_up_to(left)
    assert doc.graph.frozen_nodes() == {a, left}            # not its sibling, not below
    assert not doc.freeze_up_to(left)                        # nothing new: no step
    assert doc.freeze_up_to(after) and doc.graph.frozen_nodes() == {a, left, right, add, after}
    doc.undo()
    assert doc.graph.frozen_nodes() == {a, left}
    path = tmp_path / "net.convas.json"
    doc.save(path)
    saved = {n["id"]: n.get("frozen") for n in json.loads(path.read_text())["nodes"]}
    assert saved == {a: True, left: True, right: None, add: None, after: None}
    other = Document()
    other.open(path)
    assert other.graph.frozen_nodes() == {a, left}
    assert other.report.trainable_params == (other.report.total_params
                                             - other.report.nodes[left].params)
    # copy and paste keep the mark; undo of the unfreeze brings it back exactly
    pasted = other.paste(other.copy([left]))
    assert other.graph.is_frozen(pasted[0])
    assert other.unfreeze_all() and other.graph.frozen_nodes() == frozenset()
    other.undo()
    assert other.graph.frozen_nodes() == {a, left, pasted[0]}


def test_init_summary_names_the_first_few():
    assert init_summary([], []) == ""
    text = init_summary(["a", "b", "c", "d", "e", "f"], ["g"])
    assert "weights loaded for 6 blocks (a, b, c, d, … (2 more))" in text
    assert "1 starts fresh (g)" in text


def test_start_from_weights_reports_loaded_and_fresh_blocks(window, qtbot, tmp_path,
                                                             monkeypatch):
    import torch

    from engine import compile_graph
    from engine.checkpoint import save_checkpoint

    graph = template("x_vs_o")
    graph.training.update({"dataset_options": {"count": 120}, "device": "cpu", "epochs": 1,
                           "batch_size": 32})
    torch.manual_seed(0)
    weights = {k: v for k, v in compile_graph(graph).state_dict().items()
               if not k.startswith("fc.")}       # fc has nothing in it: it starts fresh
    ckpt = save_checkpoint(tmp_path / "pre.pt", graph, weights)
    window.doc.new_from(graph)
    window.doc.set_frozen(["conv1", "bn1"], True)
    dock = window.training
    assert dock.panel.init_path.text() == ""
    monkeypatch.setattr("widgets.training_panel.QFileDialog.getOpenFileName",
                        lambda *a, **k: (str(ckpt), ""))
    QTest.mouseClick(dock.panel.init_browse, Qt.MouseButton.LeftButton)
    assert window.doc.graph.training["init"] == str(ckpt)
    assert dock.panel.init_path.text() == str(ckpt)
    train_from_dock(dock, qtbot, timeout=200_000)
    with_weights = [n for n in graph.nodes if graph.type_of(n) in ("Conv2d", "BatchNorm",
                                                                   "Linear")]
    assert dock.info.init_loaded == [n for n in with_weights if n != "fc"]
    assert dock.info.init_fresh == ["fc"]
    status = dock.panel.status.text()
    assert f"weights loaded for {len(with_weights) - 1} blocks" in status
    assert "1 starts fresh (fc)" in status
    # clearing it (×) takes the key out of the design again, as one edit
    QTest.mouseClick(dock.panel.init_clear, Qt.MouseButton.LeftButton)
    assert "init" not in window.doc.graph.training
    window.doc.undo()
    assert window.doc.graph.training["init"] == str(ckpt)
    assert dock.panel.init_path.text() == str(ckpt)


def test_a_missing_start_checkpoint_is_said_before_the_run(window, tmp_path):
    graph = template("x_vs_o")
    graph.training.update({"init": str(tmp_path / "gone.pt"), "device": "cpu"})
    window.doc.new_from(graph)
    assert not window.training.start()
    status = window.training.panel.status.text()
    assert "gone.pt is not there" in status and "Browse" in status


def test_lock_badge_sits_in_the_header_left_of_a_warning(qtbot):
    from widgets.canvas.model import NodeView
    from widgets.canvas.node_item import HEADER, NodeItem
    from widgets.canvas.theme import LIGHT

    view = NodeView("c", "Conv2d", "Convolution", 1, True, "", "", "", frozen=True)
    item = NodeItem(view, LIGHT)
    rect = item.lock_rect()
    assert rect is not None and rect.bottom() <= HEADER
    assert item.card_rect().contains(rect)
    warned = NodeItem(NodeView("c", "Conv2d", "Convolution", 1, True, "", "", "",
                               warning="odd", frozen=True), LIGHT)
    assert warned.lock_rect().right() < rect.right() - 10      # room for the warning icon
    assert NodeItem(NodeView("c", "Conv2d", "Convolution", 1, True, "", "", ""),
                    LIGHT).lock_rect() is None
