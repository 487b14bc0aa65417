"""The inspector: a form for the selected block's parameters, built from its ParamSpecs.

It shows values and emits requests; it never edits the graph. The document answers a
request by changing the graph, and the window calls :meth:`Inspector.refresh` with the
new values, which updates the editors in place so the user keeps focus and cursor.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from PySide6.QtCore import QEvent, Qt, Signal
from PySide6.QtGui import QPalette
from PySide6.QtWidgets import (
    QCheckBox,
    QFormLayout,
    QFrame,
    QHBoxLayout,
    QLabel,
    QScrollArea,
    QSizePolicy,
    QStackedWidget,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from engine.blocks import CATALOGUE
from engine.spec import BlockSpec, ParamSpec
from engine.units import json_text

from .arg_editor import ArgumentEditor, is_argument
from .param_editors import ParamEditor, TextEditor, make_editor
from .style import category_pixmap, palette_is_dark, reset_icon, severity_color


def param_tooltip(spec: ParamSpec) -> str:
    return f"{spec.doc}\n{spec.name}: {spec.expected()}; default {json_text(spec.default)}"


@dataclass
class _Row:
    """One parameter's widgets in the form."""

    spec: ParamSpec
    label: QLabel
    editor: ParamEditor
    reset: QToolButton
    field: QWidget
    known: bool = True
    visible: bool = True
    look: tuple | None = None  # (is_set, problem, dark) last drawn


class Inspector(QWidget):
    """Parameter form of one block, with its doc, analysis summary and error."""

    param_edit_requested = Signal(str, str, object)  # node id, param, plain value / None
    freeze_requested = Signal(str, bool)             # node id, frozen

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._node_id: str | None = None
        self._spec: BlockSpec | None = None
        self._arguments: list[str] | None = None  # inside a block's body: its arguments
        self._values: dict[str, Any] = {}
        self._rows: dict[str, _Row] = {}
        self._building = False
        self._form_widget: QWidget | None = None
        self._form: QFormLayout | None = None

        self.stack = QStackedWidget(self)
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.addWidget(self.stack)

        self.empty = QLabel("Select a block", self)
        self.empty.setObjectName("inspectorEmpty")
        self.empty.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.empty.setForegroundRole(QPalette.ColorRole.PlaceholderText)
        self.stack.addWidget(self.empty)

        self.scroll = QScrollArea(self)
        self.scroll.setWidgetResizable(True)
        self.scroll.setFrameShape(QFrame.Shape.NoFrame)
        # The form narrows with the dock instead of scrolling sideways.
        self.scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.page = QWidget()
        self.scroll.setWidget(self.page)
        self.stack.addWidget(self.scroll)
        self._build_header()
        self.clear()

    def _build_header(self) -> None:
        lay = QVBoxLayout(self.page)
        lay.setContentsMargins(8, 8, 8, 8)
        lay.setSpacing(4)
        title_row = QHBoxLayout()
        title_row.setSpacing(6)
        self.chip = QLabel(self.page)
        self.title = QLabel(self.page)
        self.title.setObjectName("inspectorTitle")
        font = self.title.font()
        font.setBold(True)
        font.setPointSizeF(font.pointSizeF() * 1.2)
        self.title.setFont(font)
        self.id_label = QLabel(self.page)
        self.id_label.setObjectName("inspectorId")
        self.id_label.setForegroundRole(QPalette.ColorRole.PlaceholderText)
        self.id_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        title_row.addWidget(self.chip)
        title_row.addWidget(self.title)
        title_row.addWidget(self.id_label, 1)
        lay.addLayout(title_row)
        self.doc = self._wrapping_label("inspectorDoc")
        self.doc.setForegroundRole(QPalette.ColorRole.PlaceholderText)
        self.summary = self._wrapping_label("inspectorSummary")
        self.error = self._wrapping_label("inspectorError")
        self.error.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        for w in (self.doc, self.summary, self.error):
            lay.addWidget(w)
        # Fine-tuning (SPEC §8): a frozen block keeps its weights when the design trains.
        self.freeze = QCheckBox("Frozen: keep its weights when training", self.page)
        self.freeze.setObjectName("inspectorFreeze")
        self.freeze.setToolTip("A frozen block is not trained: its weights (and BatchNorm "
                               "statistics) stay as loaded, e.g. from Start from weights. "
                               "Edit → Freeze Up to Here freezes everything before a block.")
        self.freeze.toggled.connect(self._on_freeze_toggled)
        lay.addWidget(self.freeze)
        line = QFrame(self.page)
        line.setFrameShape(QFrame.Shape.HLine)
        line.setFrameShadow(QFrame.Shadow.Sunken)
        lay.addWidget(line)
        self.form_holder = QVBoxLayout()
        lay.addLayout(self.form_holder)
        lay.addStretch(1)
        self._color_error()

    def _wrapping_label(self, name: str) -> QLabel:
        label = QLabel(self.page)
        label.setObjectName(name)
        label.setWordWrap(True)
        label.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Minimum)
        return label

    # ---- public API -------------------------------------------------------------------

    @property
    def node_id(self) -> str | None:
        """The node shown, or None when the inspector is empty."""
        return self._node_id

    def clear(self) -> None:
        """Show "Select a block" and forget the node."""
        self._node_id, self._spec, self._arguments = None, None, None
        self._values = {}
        self._drop_form()
        self.stack.setCurrentWidget(self.empty)

    def show_node(self, node_id: str, type_name: str, values: dict[str, Any],
                  error: str | None = None, spec: BlockSpec | None = None,
                  arguments: list[str] | None = None) -> None:
        """Build the form for ``node_id``; ``values`` are the params the user set.
        ``arguments``: the node is inside a block's body, and a value may be
        ``"$name"``, one of these arguments of the block (SPEC §9).

        Showing the node already shown updates the form in place, so a caller that
        re-selects after every edit does not steal the focus from the editor in use.
        """
        if (node_id == self._node_id and self._spec is not None
                and self._spec.type == type_name and arguments == self._arguments):
            self.set_summary("")
            self.refresh(values, error)
            return
        spec = spec or CATALOGUE.get(type_name)  # a design's own block comes with its spec
        if spec is None:
            self.clear()
            self.empty.setText(f"Unknown block type {type_name!r}")
            return
        self.empty.setText("Select a block")
        self._node_id, self._spec, self._arguments = node_id, spec, arguments
        self._values = dict(values)
        self.chip.setPixmap(category_pixmap(spec.category, palette_is_dark(self.palette()), 16))
        self.chip.setToolTip(spec.category)
        self.title.setText(spec.type)
        self.id_label.setText(node_id)
        self.doc.setText(spec.doc)
        self.set_summary("")
        self._set_error(error)
        self._build_form(spec)
        self.stack.setCurrentWidget(self.scroll)

    def refresh(self, values: dict[str, Any], error: str | None = None) -> None:
        """Show new values for the same node without rebuilding (keeps focus and typing)."""
        if self._spec is None:
            return
        values = dict(values)
        unknown = {k for k in values if k not in self._spec.param_index}
        shown_unknown = {n for n, r in self._rows.items() if not r.known}
        self._values = values
        if unknown != shown_unknown:
            self._build_form(self._spec)
        else:
            self._building = True
            try:
                for name, row in self._rows.items():
                    new = values.get(name, row.spec.default)
                    if not _same(row.editor.value(), new):
                        row.editor.set_value(new)
            finally:
                self._building = False
            self._update_rows()
        self._set_error(error)

    def set_frozen(self, frozen: bool) -> None:
        """Show whether the block is frozen (after a toggle, undo or redo)."""
        if self.freeze.isChecked() != frozen:
            self._building = True
            try:
                self.freeze.setChecked(frozen)
            finally:
                self._building = False

    def _on_freeze_toggled(self, checked: bool) -> None:
        if not self._building and self._node_id is not None:
            self.freeze_requested.emit(self._node_id, checked)

    def set_summary(self, text: str) -> None:
        """The analysis line: output shape, params, MACs."""
        self.summary.setText(text)
        self.summary.setVisible(bool(text))

    def editor(self, name: str) -> ParamEditor:
        """The editor of parameter ``name`` (for tests and keyboard focus)."""
        return self._rows[name].editor

    def reset_button(self, name: str) -> QToolButton:
        return self._rows[name].reset

    def row_visible(self, name: str) -> bool:
        """Whether ``name``'s row is shown (only_when rows hide when their condition fails)."""
        return name in self._rows and self._rows[name].visible

    def param_names(self) -> list[str]:
        return list(self._rows)

    # ---- the form ---------------------------------------------------------------------

    def _drop_form(self) -> None:
        self._rows = {}
        if self._form_widget is not None:
            self._form_widget.hide()
            self._form_widget.deleteLater()
        self._form_widget, self._form = None, None

    def _build_form(self, spec: BlockSpec) -> None:
        self._building = True
        try:
            self._drop_form()
            holder = QWidget(self.page)
            form = QFormLayout(holder)
            form.setContentsMargins(0, 4, 0, 0)
            form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
            # In a narrow dock a wide editor moves under its label rather than clip.
            form.setRowWrapPolicy(QFormLayout.RowWrapPolicy.WrapLongRows)
            form.setLabelAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            self._form_widget, self._form = holder, form
            for p in spec.params:
                self._add_row(p, known=True)
            for name, value in self._values.items():
                if name not in spec.param_index:
                    ghost = ParamSpec(name, "unknown", value,
                                      f"{spec.type} has no parameter {name!r}: "
                                      f"remove it with the reset button")
                    self._add_row(ghost, known=False)
            if not self._rows:
                none = QLabel("No parameters.", holder)
                none.setForegroundRole(QPalette.ColorRole.PlaceholderText)
                form.addRow(none)
            self.form_holder.addWidget(holder)
            self._update_rows()
        finally:
            self._building = False

    def _add_row(self, spec: ParamSpec, known: bool) -> None:
        holder = self._form_widget
        label = QLabel(spec.name, holder)
        label.setObjectName("paramLabel")
        if not known:
            editor: ParamEditor = TextEditor(spec, holder)
        elif self._arguments is not None:
            editor = ArgumentEditor(spec, self._arguments, holder)
        else:
            editor = make_editor(spec, holder)
        editor.set_value(self._values.get(spec.name, spec.default))
        reset = QToolButton(holder)
        reset.setObjectName("paramReset")
        reset.setAutoRaise(True)
        reset.setIcon(reset_icon(self.palette().color(QPalette.ColorRole.WindowText)))
        reset.setToolTip(f"Back to the default ({json_text(spec.default)})" if known
                         else "Remove this unknown parameter")
        reset.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        policy = reset.sizePolicy()
        policy.setRetainSizeWhenHidden(True)
        reset.setSizePolicy(policy)
        field = QWidget(holder)
        row_layout = QHBoxLayout(field)
        row_layout.setContentsMargins(0, 0, 0, 0)
        row_layout.setSpacing(2)
        row_layout.addWidget(editor, 1)
        row_layout.addWidget(reset)
        tip = param_tooltip(spec) if known else spec.doc
        label.setToolTip(tip)
        editor.setToolTip(tip)
        self._form.addRow(label, field)
        row = _Row(spec, label, editor, reset, field, known)
        self._rows[spec.name] = row
        editor.edited.connect(lambda v, n=spec.name: self._on_edited(n, v))
        reset.clicked.connect(lambda _=False, n=spec.name: self._on_reset(n))

    def _update_rows(self) -> None:
        """Default/user-set look, validity and only_when visibility of every row."""
        dark = palette_is_dark(self.palette())
        for name, row in self._rows.items():
            is_set = name in self._values
            if not row.known:
                problem = row.spec.doc
            else:
                problem = _problem(row.spec, self._values[name], self._arguments) \
                    if is_set else None
            look = (is_set, problem, dark)
            if look != row.look:
                row.look = look
                self._style_row(row, is_set, problem, dark)
            visible = self._condition_holds(row.spec) and (row.known or is_set)
            if visible != row.visible:
                row.visible = visible
                self._form.setRowVisible(row.field, visible)

    def _style_row(self, row: _Row, is_set: bool, problem: str | None, dark: bool) -> None:
        """Defaults read lighter and italic; a value the spec refuses reads red."""
        font = row.label.font()
        font.setItalic(not is_set)
        row.label.setFont(font)
        row.label.setForegroundRole(QPalette.ColorRole.WindowText if is_set
                                    else QPalette.ColorRole.PlaceholderText)
        color = severity_color("error", dark).name()
        row.label.setStyleSheet(f"color: {color};" if problem else "")
        tip = param_tooltip(row.spec) if row.known else ""
        if problem and problem != tip:
            tip = f"{tip}\n{problem}" if tip else problem
        row.label.setToolTip(tip)
        row.reset.setVisible(is_set)

    def _condition_holds(self, spec: ParamSpec) -> bool:
        if spec.only_when is None or self._spec is None:
            return True
        param, wanted = spec.only_when
        other = self._spec.param_index.get(param)
        current = self._values.get(param, other.default if other is not None else None)
        return current == wanted

    def _on_edited(self, name: str, value: Any) -> None:
        if self._building or self._node_id is None:
            return
        self._values[name] = value
        self._update_rows()
        self.param_edit_requested.emit(self._node_id, name, value)

    def _on_reset(self, name: str) -> None:
        row = self._rows.get(name)
        if row is None or self._node_id is None or name not in self._values:
            return
        del self._values[name]
        self._building = True
        try:
            row.editor.set_value(row.spec.default)
        finally:
            self._building = False
        self._update_rows()
        self.param_edit_requested.emit(self._node_id, name, None)

    # ---- error and theme --------------------------------------------------------------

    def _set_error(self, error: str | None) -> None:
        self.error.setText(error or "")
        self.error.setVisible(bool(error))

    def _color_error(self) -> None:
        color = severity_color("error", palette_is_dark(self.palette())).name()
        self.error.setStyleSheet(f"color: {color};")

    def changeEvent(self, event: QEvent) -> None:
        if event.type() == QEvent.Type.PaletteChange:
            self._color_error()
            if self._spec is not None:
                dark = palette_is_dark(self.palette())
                self.chip.setPixmap(category_pixmap(self._spec.category, dark, 16))
                icon = reset_icon(self.palette().color(QPalette.ColorRole.WindowText))
                for row in self._rows.values():
                    row.reset.setIcon(icon)
                self._update_rows()
        super().changeEvent(event)


def _same(a: Any, b: Any) -> bool:
    """Equal as plain JSON: 3 ≠ [3, 3] and 1 ≠ True, but (3, 5) == [3, 5]."""
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return list(a) == list(b)
    return type(a) is type(b) and a == b


def _problem(spec: ParamSpec, value: Any, arguments: list[str] | None = None) -> str | None:
    if arguments is not None and is_argument(value):
        return None if value[1:] in arguments else (
            f"{spec.name}: {value} is not an argument of the block: "
            f"add it to the block's parameters or write a value")
    try:
        spec.normalize(value)
    except ValueError as exc:
        return f"{spec.name}: {exc}"
    return None
