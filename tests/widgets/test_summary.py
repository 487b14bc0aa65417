"""The Layers table: rows equal to the analysis through edits, additions and removals,
told to the view as row changes rather than a refill; a click names the block."""

from __future__ import annotations

import PySide6  # noqa: F401  (before anything that may import pyqtgraph)
import pytest
from PySide6.QtCore import Qt

from designer.templates import template_files
from engine import Graph, analyze
from engine.units import human_count
from widgets.summary import ERROR_BRUSH, NODE_ROLE, SummaryTable


def x_vs_o() -> Graph:
    f = next(f for f in template_files() if f.name == "x_vs_o.convas.json")
    return Graph.loads(f.read_text("utf-8"), f.name)


def rows_of(graph: Graph) -> list[dict]:
    return [info.to_dict() for info in analyze(graph).nodes.values()]


def check_rows_equal_analysis(table: SummaryTable, graph: Graph) -> None:
    """Every row, in the analysis' order, shows that block's figures."""
    report = analyze(graph)
    assert table.rowCount() == len(report.nodes)
    for row, info in enumerate(report.nodes.values()):
        block, type_name, shape, params, macs, rf, jump, problem = table.row_texts(row)
        assert (block, type_name) == (info.id, info.type)
        assert shape == ("?" if info.output_shape is None
                         else "[" + ", ".join(str(d) for d in info.output_shape) + "]")
        assert params.replace(",", "") == str(info.params)
        assert macs == (human_count(info.macs) if info.macs else "0")
        for text, value in ((rf, info.receptive_field), (jump, info.jump)):
            assert (text == "") if value is None else float(text) == pytest.approx(value)
        assert problem == (info.error.message if info.error else "")


class Recorder:
    """What the model told its views: dataChanged rows, inserts, removals, resets."""

    def __init__(self, model) -> None:
        self.changed: list[int] = []
        self.events: list[str] = []
        model.dataChanged.connect(lambda a, b, *_: self.changed.extend(range(a.row(),
                                                                             b.row() + 1)))
        model.rowsInserted.connect(lambda _p, a, b: self.events.append(f"insert {a}-{b}"))
        model.rowsRemoved.connect(lambda _p, a, b: self.events.append(f"remove {a}-{b}"))
        model.modelReset.connect(lambda: self.events.append("reset"))

    def clear(self) -> None:
        self.changed.clear()
        self.events.clear()


@pytest.fixture
def table(shown):
    return shown(SummaryTable(), 900, 300)


def test_rows_follow_edits_additions_and_removals(table):
    g = x_vs_o()
    table.set_rows(rows_of(g))
    check_rows_equal_analysis(table, g)
    record = Recorder(table.model())

    g.set_param("conv2", "out_channels", 24)
    table.set_rows(rows_of(g))
    check_rows_equal_analysis(table, g)
    assert record.events == [] and record.changed  # updated in place

    record.clear()  # a Dropout between flatten and fc: one row inserted
    g.remove_edge("flatten", "fc")
    g.add_node("drop", "Dropout", {"p": 0.3})
    g.add_edge("flatten", "drop")
    g.add_edge("drop", "fc")
    table.set_rows(rows_of(g))
    check_rows_equal_analysis(table, g)
    where = table.row_texts(table.rowCount() - 3)[0]
    assert where == "drop" and record.events == [f"insert {table.rowCount() - 3}-"
                                                 f"{table.rowCount() - 3}"]

    record.clear()  # bn2 taken out (conv2 → relu2): one row removed
    g.remove_node("bn2")
    g.add_edge("conv2", "relu2")
    table.set_rows(rows_of(g))
    check_rows_equal_analysis(table, g)
    assert record.events == ["remove 6-6"]

    record.clear()  # another design altogether: the model starts again
    other = Graph("other")
    other.add_node("in", "Input", {"channels": 3, "height": 8, "width": 8})
    other.add_node("flat", "Flatten")
    other.add_edge("in", "flat")
    table.set_rows(rows_of(other))
    check_rows_equal_analysis(table, other)
    assert record.events == ["reset"]


def test_one_parameter_edit_tells_only_the_rows_that_changed(table):
    g = x_vs_o()
    before = rows_of(g)
    table.set_rows(before)
    texts_before = [table.row_texts(r) for r in range(table.rowCount())]
    record = Recorder(table.model())

    g.set_param("conv3", "out_channels", 48)  # conv3 … fc change; conv1 … pool2 do not
    table.set_rows(rows_of(g))
    check_rows_equal_analysis(table, g)
    texts_after = [table.row_texts(r) for r in range(table.rowCount())]
    really_changed = [r for r, (a, b) in enumerate(zip(texts_before, texts_after,
                                                         strict=True)) if a != b]
    assert record.events == []  # no reset, no insert or removal
    assert sorted(record.changed) == really_changed
    ids = [table.node_id(r) for r in really_changed]
    assert "conv3" in ids and "fc" in ids and "conv1" not in ids and "pool2" not in ids

    record.clear()  # the same analysis again: nothing at all
    table.set_rows(rows_of(g))
    assert record.changed == [] and record.events == []


def test_click_or_enter_on_a_row_names_its_block(table, qtbot):
    table.set_rows(rows_of(x_vs_o()))
    got: list[str] = []
    table.block_activated.connect(got.append)
    rect = table.visualRect(table.model().index(4, 2))
    qtbot.mouseClick(table.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    assert got == ["pool1"]  # once
    assert table.selectionModel().isRowSelected(4)

    table.setCurrentIndex(table.model().index(2, 0))
    with qtbot.waitSignal(table.block_activated, timeout=1000) as blocker:
        qtbot.keyClick(table, Qt.Key.Key_Return)
    assert blocker.args == ["bn1"]


def test_a_row_with_an_error_is_tinted_and_explains_itself(table):
    g = x_vs_o()
    g.set_param("conv3", "kernel_size", 9)  # larger than its 6×6 input
    g.set_param("conv3", "padding", "valid")
    table.set_rows(rows_of(g))
    model = table.model()
    row = next(r for r in range(model.rowCount()) if table.node_id(r) == "conv3")
    assert "larger than" in table.row_texts(row)[-1]
    index = model.index(row, 0)
    assert model.data(index, Qt.ItemDataRole.BackgroundRole) == ERROR_BRUSH
    # dark text on the light tint, whatever the theme's text colour (dark theme: light)
    text = model.data(index, Qt.ItemDataRole.ForegroundRole).color()
    assert text.lightness() < 80 < ERROR_BRUSH.color().lightness()
    assert "larger than" in model.data(index, Qt.ItemDataRole.ToolTipRole)
    assert model.data(index, NODE_ROLE) == "conv3"
    fine = model.index(0, 0)
    assert model.data(fine, Qt.ItemDataRole.BackgroundRole) is None
    assert model.data(fine, Qt.ItemDataRole.ForegroundRole) is None
    assert model.data(fine, Qt.ItemDataRole.ToolTipRole) is None
    right = Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter
    assert model.data(model.index(0, 3), Qt.ItemDataRole.TextAlignmentRole) == right


def test_columns_fit_their_texts_and_widen_for_longer_ones(table):
    g = x_vs_o()
    table.set_rows(rows_of(g))
    header, metrics = table.horizontalHeader(), table.fontMetrics()

    def fits() -> bool:  # with room for the cell's margins: nothing is elided ("BatchNo…")
        return all(metrics.horizontalAdvance(table.row_texts(r)[c]) + 6 <= header.sectionSize(c)
                   for r in range(table.rowCount()) for c in range(header.count() - 1))

    assert fits()
    assert header.sectionResizeMode(0) != header.ResizeMode.ResizeToContents
    g.set_param("conv1", "out_channels", 123456)  # a far longer params figure
    table.set_rows(rows_of(g))
    assert fits()


def test_a_column_fits_its_widest_text_not_only_its_longest_ones(table):
    """In a proportional font fewer letters can be wider ("BatchNorm" beside three
    "Activation"s): the column must fit the widest, whatever the repeats."""
    rows = rows_of(x_vs_o())
    narrow, wide = "i" * 14, "W" * 11
    for i, row in enumerate(rows):
        row["type"] = narrow if i < 4 else (wide if i == 4 else "Conv")
    table.set_rows(rows)
    metrics = table.fontMetrics()
    assert metrics.horizontalAdvance(wide) > metrics.horizontalAdvance(narrow)
    assert metrics.horizontalAdvance(wide) + 6 <= table.horizontalHeader().sectionSize(1)
