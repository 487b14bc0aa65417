"""One editor widget per ParamSpec kind, all with the same small interface.

Every editor shows a plain JSON value (int, float, bool, str, ``[h, w]`` or None) and
emits :attr:`ParamEditor.edited` with the new plain value only when the *user*
changes it: :meth:`ParamEditor.set_value` is silent, so the inspector can rebuild or
refresh a form without sending edits back to the document.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QPalette, QValidator, QWheelEvent
from PySide6.QtWidgets import (
    QAbstractSpinBox,
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QHBoxLayout,
    QLineEdit,
    QSizePolicy,
    QSpinBox,
    QToolButton,
    QWidget,
)

from engine.spec import ParamSpec

from .style import pair_icon

INT_LIMIT = 2**31 - 1  # QSpinBox holds a C int
_NUMBER = "number"  # the int2 mode combo's entry for "a number, not a word"


class ParamEditor(QWidget):
    """Base class: holds the last shown value and emits only real, user-made changes."""

    edited = Signal(object)

    def __init__(self, spec: ParamSpec, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.spec = spec
        self._value: Any = spec.default
        self._quiet = False
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(3)

    def value(self) -> Any:
        """The value shown, as plain JSON."""
        return self._value

    def set_value(self, value: Any) -> None:
        """Show ``value`` without emitting :attr:`edited`."""
        self._quiet = True
        try:
            self._value = value
            self._show(value)
        finally:
            self._quiet = False

    def _show(self, value: Any) -> None:
        raise NotImplementedError

    def _commit(self, value: Any) -> None:
        """Called by the concrete editors on user input; emits once per real change."""
        if self._quiet or _same(value, self._value):
            return
        self._value = value
        self.edited.emit(value)


def _same(a: Any, b: Any) -> bool:
    return type(a) is type(b) and a == b


def _int_range(spec: ParamSpec) -> tuple[int, int]:
    lo = -INT_LIMIT if spec.minimum is None else int(math.ceil(spec.minimum))
    hi = INT_LIMIT if spec.maximum is None else int(min(spec.maximum, INT_LIMIT))
    return lo, hi


def _as_int(value: Any, fallback: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return fallback
    return int(value)


class _WheelOnlyWhenFocused:
    """Mixin: the mouse wheel changes a value only in the editor the user clicked into;
    otherwise it scrolls the inspector, so scrolling past a form edits nothing."""

    def _init_wheel(self) -> None:
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)

    def wheelEvent(self, event: QWheelEvent) -> None:
        if self.hasFocus():
            super().wheelEvent(event)
        else:
            event.ignore()


class SpinBox(_WheelOnlyWhenFocused, QSpinBox):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._init_wheel()


class ComboBox(_WheelOnlyWhenFocused, QComboBox):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._init_wheel()


def make_spin(spec: ParamSpec, parent: QWidget) -> QSpinBox:
    spin = SpinBox(parent)
    spin.setRange(*_int_range(spec))
    spin.setAccelerated(True)
    spin.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
    spin.setMinimumWidth(44)
    return spin


class IntEditor(ParamEditor):
    """A spin box limited to the spec's range; emits while typing (edits merge in undo)."""

    def __init__(self, spec: ParamSpec, parent: QWidget | None = None) -> None:
        super().__init__(spec, parent)
        self.spin = make_spin(spec, self)
        self.layout().addWidget(self.spin)
        self.spin.valueChanged.connect(lambda v: self._commit(int(v)))
        self.setFocusProxy(self.spin)

    def _show(self, value: Any) -> None:
        self.spin.setValue(_as_int(value, _as_int(self.spec.default, 0)))


class SciSpinBox(_WheelOnlyWhenFocused, QDoubleSpinBox):
    """A double spin box that reads and writes 1e-05 as well as 0.25.

    QDoubleSpinBox rounds to a fixed number of decimals, which loses ``eps = 1e-12``;
    this one keeps full precision, shows ``%g`` text and steps decades on ranges that
    span several (so the arrows go 1e-05 → 1e-04 rather than 1e-05 → 0.01).
    """

    _TEXT = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+|\d*)([eE][+-]?\d*)?$")

    def __init__(self, spec: ParamSpec, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._init_wheel()
        self.setDecimals(323)  # no rounding: Qt keeps the double as given
        lo = -1e300 if spec.minimum is None else float(spec.minimum)
        hi = 1e300 if spec.maximum is None else float(spec.maximum)
        self.setRange(lo, hi)
        self.log_steps = lo > 0 and hi / lo >= 1e3
        self.setSingleStep(0.01 if hi - lo <= 1 else 0.1)
        self.setAccelerated(True)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.setMinimumWidth(44)

    def textFromValue(self, value: float) -> str:
        return f"{value:.6g}"

    def valueFromText(self, text: str) -> float:
        try:
            return float(text.strip())
        except ValueError:
            return self.value()

    def validate(self, text: str, pos: int) -> object:
        s = text.strip()
        if not self._TEXT.match(s):
            return QValidator.State.Invalid, text, pos
        try:
            v = float(s)
        except ValueError:
            return QValidator.State.Intermediate, text, pos
        if self.minimum() <= v <= self.maximum():
            return QValidator.State.Acceptable, text, pos
        return QValidator.State.Intermediate, text, pos

    def fixup(self, text: str) -> str:
        return self.textFromValue(self.value())

    def stepBy(self, steps: int) -> None:
        if self.log_steps and self.value() > 0:
            self.setValue(min(max(self.value() * 10.0 ** steps, self.minimum()), self.maximum()))
            self.selectAll()
        else:
            super().stepBy(steps)


class FloatEditor(ParamEditor):
    """Scientific-notation spin box; commits on Enter, focus-out or an arrow step."""

    def __init__(self, spec: ParamSpec, parent: QWidget | None = None) -> None:
        super().__init__(spec, parent)
        self.spin = SciSpinBox(spec, self)
        self.spin.setKeyboardTracking(False)  # "0." or "1e-" are not values yet
        self.layout().addWidget(self.spin)
        self.spin.valueChanged.connect(lambda v: self._commit(float(v)))
        self.setFocusProxy(self.spin)

    def _show(self, value: Any) -> None:
        fallback = float(self.spec.default) if self.spec.default is not None else 0.0
        if isinstance(value, bool) or not isinstance(value, int | float):
            value = fallback
        self.spin.setValue(float(value))


class BoolEditor(ParamEditor):
    def __init__(self, spec: ParamSpec, parent: QWidget | None = None) -> None:
        super().__init__(spec, parent)
        self.check = QCheckBox(self)
        self.layout().addWidget(self.check)
        self.layout().addStretch(1)
        self.check.toggled.connect(lambda on: self._commit(bool(on)))
        self.setFocusProxy(self.check)

    def _show(self, value: Any) -> None:
        self.check.setChecked(bool(value) if isinstance(value, bool) else bool(self.spec.default))


class ChoiceEditor(ParamEditor):
    def __init__(self, spec: ParamSpec, parent: QWidget | None = None) -> None:
        super().__init__(spec, parent)
        self.combo = ComboBox(self)
        self.combo.addItems(list(spec.choices))
        self.combo.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.layout().addWidget(self.combo)
        self.combo.currentTextChanged.connect(self._commit)
        self.setFocusProxy(self.combo)

    def _show(self, value: Any) -> None:
        index = self.combo.findText(value) if isinstance(value, str) else -1
        if index < 0:
            index = max(self.combo.findText(str(self.spec.default)), 0)
        self.combo.setCurrentIndex(index)


def null_label(spec: ParamSpec) -> str:
    """How the null choice of a nullable param reads, short enough for a narrow dock:
    the first word of what its doc says null means ("null means the kernel size" gives
    "= kernel"); the item's tooltip carries the whole phrase."""
    m = re.search(r"null means (?:the )?([^.;,]+)", spec.doc)
    return f"= {m.group(1).split()[0]}" if m else "default"


class Int2Editor(ParamEditor):
    """An int or ``[h, w]``, plus the spec's words ("same", "valid") and null.

    One spin box edits a square value; the ``h×w`` toggle shows a second one for a
    rectangular value. A mode combo, present when the spec has words or is
    nullable, switches between a number and those.
    """

    def __init__(self, spec: ParamSpec, parent: QWidget | None = None) -> None:
        super().__init__(spec, parent)
        lay = self.layout()
        self.mode: QComboBox | None = None
        if spec.words or spec.nullable:
            self.mode = ComboBox(self)
            self.mode.addItem(_NUMBER, _NUMBER)
            for word in spec.words:
                self.mode.addItem(word, word)
            if spec.nullable:
                self.mode.addItem(null_label(spec), None)
                self.mode.setItemData(self.mode.count() - 1, spec.doc,
                                      Qt.ItemDataRole.ToolTipRole)
            self.mode.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
            self.mode.setToolTip(f"{spec.name}: {spec.expected()}")
            lay.addWidget(self.mode)
            self.mode.currentIndexChanged.connect(self._on_mode)
        self.h = make_spin(spec, self)
        self.w = make_spin(spec, self)
        self.h.setToolTip("height (and width while h×w is off)")
        self.w.setToolTip("width")
        self.pair = QToolButton(self)
        self.pair.setObjectName("paramPairToggle")
        self.pair.setIcon(pair_icon(self.palette().color(QPalette.ColorRole.ButtonText)))
        self.pair.setAutoRaise(True)
        self.pair.setCheckable(True)
        self.pair.setToolTip("Edit height and width separately")
        self.pair.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        lay.addWidget(self.h)
        lay.addWidget(self.w)
        lay.addWidget(self.pair)
        self._show_pair(False)
        self.h.valueChanged.connect(self._on_number)
        self.w.valueChanged.connect(self._on_number)
        self.pair.toggled.connect(self._on_pair)
        self.setFocusProxy(self.h)

    def is_pair(self) -> bool:
        return self.pair.isChecked()

    def _mode_value(self) -> Any:
        return _NUMBER if self.mode is None else self.mode.currentData()

    def _number(self) -> int | list[int]:
        return [self.h.value(), self.w.value()] if self.is_pair() else self.h.value()

    def _show(self, value: Any) -> None:
        default = self.spec.default if isinstance(self.spec.default, int) else None
        fallback = default if default is not None else max(1, _int_range(self.spec)[0])
        if isinstance(value, list | tuple) and len(value) == 2:
            h, w = (_as_int(v, fallback) for v in value)
            self._set_number(h, w, pair=True)
            self._set_mode(_NUMBER)
        elif isinstance(value, str) or value is None:
            if not self.is_pair():
                self._set_number(fallback, fallback, pair=False)
            self._set_mode(value)
        else:
            v = _as_int(value, fallback)
            self._set_number(v, v, pair=False)
            self._set_mode(_NUMBER)

    def _set_number(self, h: int, w: int, pair: bool) -> None:
        for widget, v in ((self.h, h), (self.w, w)):
            widget.blockSignals(True)
            widget.setValue(v)
            widget.blockSignals(False)
        self.pair.blockSignals(True)
        self.pair.setChecked(pair)
        self.pair.blockSignals(False)
        self._show_pair(pair)

    def _show_pair(self, on: bool) -> None:
        self.w.setVisible(on)
        self.pair.setToolTip("Edit height and width together" if on
                             else "Edit height and width separately")

    def _set_mode(self, value: Any) -> None:
        numeric = True
        if self.mode is not None:
            index = self.mode.findData(value) if value is not None else self.mode.count() - 1
            if value is None and not self.spec.nullable:
                index = -1
            self.mode.setCurrentIndex(max(index, 0))
            numeric = self.mode.currentData() == _NUMBER
        self._show_numbers(numeric)

    def _show_numbers(self, numeric: bool) -> None:
        """Words ("same") and null need no number: the spin boxes hide meanwhile."""
        self.h.setVisible(numeric)
        self.pair.setVisible(numeric)
        self.w.setVisible(numeric and self.is_pair())

    def _on_mode(self, _index: int) -> None:
        mode = self._mode_value()
        numeric = mode == _NUMBER
        self._show_numbers(numeric)
        self._commit(self._number() if numeric else mode)

    def _on_number(self, _v: int) -> None:
        if self._mode_value() == _NUMBER:
            self._commit(self._number())

    def _on_pair(self, on: bool) -> None:
        if on:
            self.w.blockSignals(True)
            self.w.setValue(self.h.value())
            self.w.blockSignals(False)
        self._show_pair(on)
        # Opening h×w changes nothing yet (the first change of either side does);
        # closing it makes the value square again.
        if not on and self._mode_value() == _NUMBER:
            self._commit(self._number())


class TextEditor(ParamEditor):
    """Read-only display of a value no editor understands (an unknown parameter)."""

    def __init__(self, spec: ParamSpec, parent: QWidget | None = None) -> None:
        super().__init__(spec, parent)
        self.line = QLineEdit(self)
        self.line.setReadOnly(True)
        self.layout().addWidget(self.line)

    def _show(self, value: Any) -> None:
        self.line.setText(json.dumps(value))


class AnchorsEditor(ParamEditor):
    """A detection Output's anchors as one line of ``w,h`` pairs: ``8,8; 16,16; 32,32``.

    Typed text is checked by the spec itself when the line is left (Enter or focus
    out); text that is no list of positive pairs is marked and its reason shown in
    the tooltip, and nothing is edited until it is corrected."""

    HINT = "w,h pairs in input pixels, separated by ';' — e.g. 8,8; 16,16; 32,32"

    def __init__(self, spec: ParamSpec, parent: QWidget | None = None) -> None:
        super().__init__(spec, parent)
        self.line = QLineEdit(self)
        self.line.setToolTip(self.HINT)
        self.line.setPlaceholderText("8,8; 16,16; 32,32")
        self.line.editingFinished.connect(self._on_text)
        self.layout().addWidget(self.line)

    @staticmethod
    def format(value: Any) -> str:
        try:
            return "; ".join(",".join(_short(v) for v in pair) for pair in value)
        except TypeError:
            return json.dumps(value)

    def _show(self, value: Any) -> None:
        self.line.setText(self.format(value))
        self._mark(None)

    def _on_text(self) -> None:
        try:
            pairs = [[float(v) for v in part.replace("×", ",").split(",")]
                     for part in self.line.text().split(";") if part.strip()]
            value = [list(p) for p in self.spec.normalize(pairs)]
        except (TypeError, ValueError) as exc:
            self._mark(str(exc))
            return
        value = [[int(v) if float(v).is_integer() else v for v in p] for p in value]
        self._mark(None)
        self.line.setText(self.format(value))
        self._commit(value)

    def _mark(self, problem: str | None) -> None:
        self.line.setToolTip(f"{problem}: write {self.HINT}" if problem else self.HINT)
        self.line.setStyleSheet("" if problem is None else "QLineEdit { color: #d9534f; }")
        self.setProperty("invalid", problem is not None)


def _short(v: Any) -> str:
    return str(int(v)) if float(v).is_integer() else f"{float(v):g}"


EDITORS: dict[str, type[ParamEditor]] = {
    "int": IntEditor, "float": FloatEditor, "bool": BoolEditor, "choice": ChoiceEditor,
    "int2": Int2Editor, "anchors": AnchorsEditor,
}


def make_editor(spec: ParamSpec, parent: QWidget | None = None) -> ParamEditor:
    """The editor for ``spec.kind``; an unknown kind gets a read-only text field."""
    editor = EDITORS.get(spec.kind, TextEditor)(spec, parent)
    for spin in editor.findChildren(QAbstractSpinBox):
        spin.setCorrectionMode(QAbstractSpinBox.CorrectionMode.CorrectToNearestValue)
    return editor
