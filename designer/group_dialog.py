"""Edit → Group…: name the new block made of blocks and choose which of the selected
blocks' parameters become its arguments (SPEC §9).

Each checked parameter becomes an argument, with its current value as default and an
editable name: the parameter's own name, or ``node_param`` where two selected blocks
share it. What is wrong with a name is said under the field and OK stays disabled
until it is fixed, so the engine's ``group`` is only asked with a valid answer.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from typing import Any

from PySide6.QtWidgets import (
    QCheckBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QGridLayout,
    QLabel,
    QLineEdit,
    QScrollArea,
    QVBoxLayout,
    QWidget,
)

from engine import CATALOGUE, Graph
from engine.units import json_text
from engine.user_blocks import arg_name

NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


def name_problem(name: str, graph: Graph) -> str | None:
    """Why ``name`` cannot name a new block of this file, or None."""
    if not name:
        return "Give the block a name, such as ConvBNReLU."
    if not NAME.match(name):
        return "Use letters, digits and _, not starting with a digit."
    if name in CATALOGUE:
        return f"{name} is a built-in block: choose another name."
    if name in graph.blocks:
        return f"This design already has a block named {name}: choose another name."
    return None


def candidates(graph: Graph, ids: Sequence[str]) -> list[tuple[str, str, Any, str]]:
    """``(node, param, value, argument name)`` for every parameter of the selected
    blocks that an argument can hold (a number, a flag, a choice, not a word such as
    "same" nor an argument already); the name is the parameter's, or
    ``node_param`` where two selected blocks have that parameter."""
    rows = []
    for n in ids:
        spec = graph.spec(graph.type_of(n))
        for ps in spec.params:
            value = graph.params_of(n).get(ps.name, ps.default)
            if ps.nullable or value is None or arg_name(value) is not None or (
                    isinstance(value, str) and value in ps.words):
                continue
            rows.append((n, ps.name, value, ps.name))
    shared = Counter(r[1] for r in rows)
    return [(n, p, v, f"{n}_{p}" if shared[p] > 1 else p) for n, p, v, _ in rows]


# How a kind reads in a suggested name, as people name such blocks (ConvBNReLU).
_SHORT = {"Conv2d": "Conv", "ConvTranspose2d": "Deconv", "BatchNorm": "BN",
          "MaxPool2d": "Pool", "AvgPool2d": "AvgPool", "AdaptiveAvgPool2d": "AvgPool",
          "GlobalAvgPool": "GAP", "Dropout": "Drop", "Concat": "Cat", "Upsample": "Up"}
_FUNCTIONS = {"relu": "ReLU", "relu6": "ReLU6", "leaky_relu": "LeakyReLU", "elu": "ELU",
              "gelu": "GELU", "silu": "SiLU", "hardswish": "HardSwish"}


def _short(graph: Graph, node: str) -> str:
    kind = graph.type_of(node)
    if kind == "Activation":
        function = str(graph.spec(kind).defaults().get("function", "relu"))
        function = str(graph.params_of(node).get("function", function))
        return _FUNCTIONS.get(function, function.capitalize())
    return _SHORT.get(kind, re.sub(r"\W", "", kind))


def default_name(graph: Graph, ids: Sequence[str]) -> str:
    """A free name from the selected blocks, in graph order: ``ConvBNReLU``,
    ``ConvTanhPool``, ``Block2``…"""
    order = [n for n in graph.topo_order() or list(ids) if n in set(ids)] or list(ids)
    words = list(dict.fromkeys(_short(graph, n) for n in order))[:4]
    base = "".join(words) or "Block"
    name, i = base, 2
    while name_problem(name, graph) is not None:
        name, i = f"{base}{i}", i + 1
    return name


class GroupDialog(QDialog):
    """Asks for the new block's name and arguments; ``result_value()`` after OK."""

    def __init__(self, graph: Graph, ids: Sequence[str], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Group Blocks")
        self.graph = graph
        layout = QVBoxLayout(self)
        form = QFormLayout()
        self.name = QLineEdit(default_name(graph, ids), self)
        self.name.setObjectName("groupName")
        form.addRow("Block name", self.name)
        layout.addLayout(form)
        layout.addWidget(QLabel(f"{len(ids)} blocks become one block. Checked parameters "
                                f"become its arguments (each instance sets its own):"))
        holder = QWidget(self)
        grid = QGridLayout(holder)
        self.rows: list[tuple[QCheckBox, QLineEdit, str, str]] = []
        for i, (node, param, value, arg) in enumerate(candidates(graph, ids)):
            check = QCheckBox(f"{node}.{param}", holder)
            edit = QLineEdit(arg, holder)
            edit.setEnabled(False)
            check.toggled.connect(edit.setEnabled)
            check.toggled.connect(self._validate)
            edit.textChanged.connect(self._validate)
            grid.addWidget(check, i, 0)
            grid.addWidget(QLabel(json_text(value), holder), i, 1)
            grid.addWidget(edit, i, 2)
            self.rows.append((check, edit, node, param))
        if not self.rows:
            grid.addWidget(QLabel("The selected blocks have no parameters.", holder), 0, 0)
        scroll = QScrollArea(self)
        scroll.setWidgetResizable(True)
        scroll.setWidget(holder)
        layout.addWidget(scroll, 1)
        self.problem = QLabel(self)
        self.problem.setObjectName("groupProblem")
        self.problem.setWordWrap(True)
        self.problem.setStyleSheet("color: #c0392b;")
        layout.addWidget(self.problem)
        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel, self)
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        layout.addWidget(self.buttons)
        self.name.textChanged.connect(self._validate)
        self.name.selectAll()
        self.resize(460, 420)
        self._validate()

    def row(self, node: str, param: str) -> tuple[QCheckBox, QLineEdit]:
        """The checkbox and argument-name field of ``node.param`` (tests, keyboard)."""
        for check, edit, n, p in self.rows:
            if (n, p) == (node, param):
                return check, edit
        raise KeyError(f"{node}.{param}")

    def problem_text(self) -> str | None:
        """What stops OK, or None."""
        problem = name_problem(self.name.text().strip(), self.graph)
        if problem:
            return problem
        seen: set[str] = set()
        for check, edit, node, param in self.rows:
            if not check.isChecked():
                continue
            arg = edit.text().strip()
            if not NAME.match(arg):
                return (f"The argument for {node}.{param} needs a name of letters, digits "
                        f"and _, not starting with a digit.")
            if arg in seen:
                return f"Two arguments are named {arg}: rename one."
            seen.add(arg)
        return None

    def _validate(self, *_args: Any) -> None:
        problem = self.problem_text()
        self.problem.setText(problem or "")
        self.problem.setVisible(bool(problem))
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setEnabled(problem is None)

    def result_value(self) -> tuple[str, dict[str, tuple[str, str]]]:
        """The block name and ``{argument: (node, param)}`` for engine.grouping.group."""
        args = {edit.text().strip(): (node, param)
                for check, edit, node, param in self.rows if check.isChecked()}
        return self.name.text().strip(), args
