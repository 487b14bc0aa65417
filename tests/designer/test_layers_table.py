"""The Layers dock in the window: it follows inspector edits, added and deleted blocks,
and a click on a row selects and frames that block on the canvas."""

from __future__ import annotations

import PySide6  # noqa: F401  (Qt before pyqtgraph, always)
from PySide6.QtCore import Qt
from test_mainwindow import template_graph, type_number


def table_rows(window) -> list[tuple[str, ...]]:
    table = window.summary
    return [tuple(table.row_texts(r)[:4]) for r in range(table.rowCount())]


def analysis_rows(window) -> list[tuple[str, ...]]:
    rows = []
    for info in window.doc.report.nodes.values():
        shape = "?" if info.output_shape is None else \
            "[" + ", ".join(map(str, info.output_shape)) + "]"
        rows.append((info.id, info.type, shape, f"{info.params:,}"))
    return rows


def test_layers_follow_edits_additions_and_deletions(window, qtbot):
    window.doc.new_from(template_graph("x_vs_o"))
    window.editor.flush()
    assert table_rows(window) == analysis_rows(window)

    window.canvas.select(["conv2"])
    type_number(window.inspector.editor("out_channels"), 20)
    assert window.doc.graph.params_of("conv2")["out_channels"] == 20
    qtbot.waitUntil(lambda: table_rows(window) == analysis_rows(window), timeout=10_000)
    conv2 = next(r for r in table_rows(window) if r[0] == "conv2")
    assert conv2[2].startswith("[20,")

    added = window.editor.add_block_below_selection("Dropout")  # as the palette does
    qtbot.waitUntil(lambda: any(r[0] == added for r in table_rows(window)), timeout=10_000)
    assert table_rows(window) == analysis_rows(window)

    window.canvas.select([added])
    window.editor.delete_selection()
    qtbot.waitUntil(lambda: all(r[0] != added for r in table_rows(window)), timeout=10_000)
    assert table_rows(window) == analysis_rows(window)


def test_clicking_a_row_selects_and_frames_its_block(window, qtbot):
    window.doc.new_from(template_graph("x_vs_o"))
    window.editor.flush()
    dock = window._docks["Layers"]
    dock.show()
    dock.raise_()
    qtbot.waitUntil(window.summary.isVisible, timeout=10_000)
    table = window.summary
    row = next(r for r in range(table.rowCount()) if table.node_id(r) == "fc")
    table.scrollTo(table.model().index(row, 0))
    rect = table.visualRect(table.model().index(row, 1))
    qtbot.mouseClick(table.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    assert window.canvas.selected_nodes() == ["fc"]
    assert window.inspector.node_id == "fc"
    item = window.canvas.node_item("fc")
    visible = window.canvas.mapToScene(window.canvas.viewport().rect()).boundingRect()
    assert visible.contains(item.sceneBoundingRect().center())
