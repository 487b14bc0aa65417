"""The problems list: errors first, an icon per severity, a click names the node."""

from __future__ import annotations

import PySide6  # noqa: F401  (before anything that may import pyqtgraph)
import pytest
from PySide6.QtCore import Qt

from widgets.problems import NODE_ROLE, SEVERITY_ROLE, ProblemsList

ITEMS = [
    ("drop1", "warning", "not connected to the Output: its result is unused"),
    ("fc", "error", "Linear needs a vector [F] but gets [16,8,8]: insert Flatten"),
    (None, "error", "the graph has no Output block: add one"),
]


@pytest.fixture
def problems(shown):
    return shown(ProblemsList(), 420, 240)


def test_lists_errors_first_with_icons(problems):
    problems.set_problems(ITEMS)
    assert problems.count() == 3
    severities = [problems.item(i).data(SEVERITY_ROLE) for i in range(3)]
    assert severities == ["error", "error", "warning"]
    assert problems.item(0).text().startswith("fc: Linear needs")
    assert problems.item(1).text() == "the graph has no Output block: add one"
    assert all(not problems.item(i).icon().isNull() for i in range(3))
    assert problems.item(0).icon().cacheKey() != problems.item(2).icon().cacheKey()
    assert problems.counts() == (2, 1)
    assert "insert Flatten" in problems.item(0).toolTip()


def test_click_emits_the_node_id(problems, qtbot):
    problems.set_problems(ITEMS)
    got: list[str] = []
    problems.problem_activated.connect(got.append)
    rect = problems.visualItemRect(problems.item(2))
    qtbot.mouseClick(problems.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    assert got == ["drop1"]  # once

    problems.setCurrentRow(0)
    with qtbot.waitSignal(problems.problem_activated, timeout=1000) as blocker:
        qtbot.keyClick(problems, Qt.Key.Key_Return)
    assert blocker.args == ["fc"]


def test_graph_level_problem_emits_nothing(problems, qtbot):
    problems.set_problems(ITEMS)
    assert problems.item(1).data(NODE_ROLE) is None
    rect = problems.visualItemRect(problems.item(1))
    with qtbot.assertNotEmitted(problems.problem_activated):
        qtbot.mouseClick(problems.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())


def test_counts_signal_and_unchanged_input_keeps_selection(problems, qtbot):
    with qtbot.waitSignal(problems.counts_changed, timeout=1000) as blocker:
        problems.set_problems(ITEMS)
    assert blocker.args == [2, 1]
    problems.item(2).setSelected(True)
    problems.set_problems(list(ITEMS))
    assert problems.item(2).isSelected()
    problems.set_problems(ITEMS[:1] + ITEMS[2:])  # fc fixed: the warning stays selected
    selected = problems.selectedItems()
    assert [i.data(NODE_ROLE) for i in selected] == ["drop1"]


def test_empty_list_paints_a_placeholder(problems):
    problems.set_problems(ITEMS)
    problems.set_problems([])
    assert problems.count() == 0 and problems.counts() == (0, 0)
    assert not problems.grab().isNull()  # paints "No problems found" without error


def test_a_change_touches_only_the_lines_that_come_or_go(problems):
    warnings = [(f"b{i}", "warning", f"not connected to the Output ({i})") for i in range(300)]
    problems.set_problems(warnings)
    kept = [problems.item(i) for i in range(problems.count())]
    problems.set_problems(warnings[:100] + [("fc", "error", "bad input")] + warnings[101:])
    assert problems.count() == 300
    assert problems.item(0).text() == "fc: bad input"  # errors first
    now = [problems.item(i) for i in range(1, problems.count())]
    assert now == kept[:100] + kept[101:]  # the very same lines, not rebuilt
    assert [i.data(NODE_ROLE) for i in now] == [n for n, _, _ in warnings if n != "b100"]
    assert problems.counts() == (1, 299)
