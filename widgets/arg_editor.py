"""The inspector's editor for a parameter of a block inside a block's body (SPEC §9):
the usual editor, or, with the ``$`` button down, a text field taking ``$width`` (the
value of the instance's argument ``width``) or a plain value typed as JSON."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QCompleter, QLineEdit, QToolButton, QWidget

from engine.spec import ParamSpec
from engine.user_blocks import arg_name

from .param_editors import ParamEditor, make_editor


def is_argument(value: Any) -> bool:
    """``value`` names an argument (``"$width"``), as the engine substitutes them."""
    return arg_name(value) is not None


class ArgumentEditor(ParamEditor):
    """A value, or ``$name``: one of the block's arguments (``arguments``)."""

    def __init__(self, spec: ParamSpec, arguments: Sequence[str],
                 parent: QWidget | None = None) -> None:
        super().__init__(spec, parent)
        self.arguments = list(arguments)
        self.inner = make_editor(spec, self)
        self.inner.edited.connect(self._commit)
        self.line = QLineEdit(self)
        self.line.setPlaceholderText("$argument or a value")
        self.line.setCompleter(QCompleter([f"${a}" for a in self.arguments], self.line))
        self.line.editingFinished.connect(self._on_text)
        self.toggle = QToolButton(self)
        self.toggle.setText("$")
        self.toggle.setCheckable(True)
        self.toggle.setAutoRaise(True)
        self.toggle.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        names = ", ".join(f"${a}" for a in self.arguments) or "none yet"
        self.toggle.setToolTip("Take the value from an argument of the block "
                               f"(arguments: {names}), so each instance sets its own")
        self.toggle.toggled.connect(self._on_toggle)
        layout = self.layout()
        layout.addWidget(self.inner, 1)
        layout.addWidget(self.line, 1)
        layout.addWidget(self.toggle)
        self.line.hide()

    def _show(self, value: Any) -> None:
        argument = is_argument(value)
        self.toggle.blockSignals(True)
        self.toggle.setChecked(argument)
        self.toggle.blockSignals(False)
        self._set_mode(argument)
        if argument:
            self.line.setText(value)
        else:
            self.inner.set_value(value)

    def _set_mode(self, argument: bool) -> None:
        """The text field for an argument, else the usual editor."""
        self.line.setVisible(argument)
        self.inner.setVisible(not argument)

    def _on_toggle(self, on: bool) -> None:
        self._set_mode(on)
        if on:
            # the argument named like the parameter, else the first one
            name = self.spec.name if self.spec.name in self.arguments else (
                self.arguments[0] if self.arguments else self.spec.name)
            self.line.setText(f"${name}")
            self.line.setFocus()
            self._commit(f"${name}")
        else:
            self._commit(self.inner.value())

    def _on_text(self) -> None:
        text = self.line.text().strip()
        if not text:
            return
        if is_argument(text):
            self._commit(text)
            return
        try:
            value = json.loads(text)
        except ValueError:
            value = text  # a word such as "same": the analysis says if it is wrong
        self._commit(value)
        if not is_argument(value):
            self._show(value)
