"""The problems list: every error and warning of the analysis, one line each.

It takes plain tuples and emits the node id of a clicked line; the window selects and
frames that node, so a problem the user cannot see on the canvas is one click away.
"""

from __future__ import annotations

import difflib

from PySide6.QtCore import QEvent, QRect, Qt, Signal
from PySide6.QtGui import QPainter, QPaintEvent, QPalette
from PySide6.QtWidgets import (
    QAbstractItemView,
    QListView,
    QListWidget,
    QListWidgetItem,
    QStyle,
    QWidget,
)

from .style import palette_is_dark, severity_icon

NODE_ROLE = int(Qt.ItemDataRole.UserRole)  # plain ints: cheaper per item than Qt's enum
SEVERITY_ROLE = NODE_ROLE + 1
Problem = tuple[str | None, str, str]  # (node id or None, "error"/"warning", message)


class ProblemsList(QListWidget):
    """Errors first, then warnings; a click or Enter on a line emits its node id."""

    problem_activated = Signal(str)
    counts_changed = Signal(int, int)  # errors, warnings: for a dock title such as "Problems (3)"

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("problemsList")
        self.setWordWrap(True)
        self.setUniformItemSizes(False)
        self.setTextElideMode(Qt.TextElideMode.ElideNone)
        self.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self._problems: list[Problem] = []  # as given
        self._shown: list[Problem] = []  # as listed: errors first
        # Wrapped lines of different heights are laid out in batches between events,
        # so a thousand new warnings never hold up the window at once.
        self.setLayoutMode(QListView.LayoutMode.Batched)
        self.setBatchSize(100)
        self._icons = self._make_icons()
        # Enter (and, where the platform activates on single click, a click) arrives
        # as itemActivated; a plain click must work everywhere, but only once.
        self.itemActivated.connect(self._on_item)
        if not self.style().styleHint(QStyle.StyleHint.SH_ItemView_ActivateItemOnSingleClick,
                                      None, self):
            self.itemClicked.connect(self._on_item)

    def set_problems(self, items: list[Problem]) -> None:
        """Show ``items``, errors first. Only lines that appear or go are touched, so
        the selection survives and an edit that adds one warning to a thousand costs
        one line, not a thousand."""
        items = [(node, severity, message) for node, severity, message in items]
        if items == self._problems:
            return
        self._problems = items
        ordered = sorted(items, key=lambda p: p[1] != "error")  # stable: errors first
        if not ordered or not self._shown:
            self.clear()
            for problem in ordered:
                self.addItem(self._item(problem))
        else:
            matcher = difflib.SequenceMatcher(None, self._shown, ordered, autojunk=False)
            # From the end backwards, so the row numbers still to come stay valid.
            for tag, i1, i2, j1, j2 in reversed(matcher.get_opcodes()):
                if tag == "equal":
                    continue
                for _ in range(i1, i2):
                    self.takeItem(i1)
                for k, problem in enumerate(ordered[j1:j2]):
                    self.insertItem(i1 + k, self._item(problem))
        self._shown = ordered
        errors = sum(1 for _, s, _ in items if s == "error")
        self.counts_changed.emit(errors, len(items) - errors)

    def _item(self, problem: Problem) -> QListWidgetItem:
        node, severity, message = problem
        text = f"{node}: {message}" if node else message
        item = QListWidgetItem(self._icons.get(severity, self._icons["warning"]), text)
        item.setData(NODE_ROLE, node)
        item.setData(SEVERITY_ROLE, severity)
        where = f"Block {node}" if node else "The whole graph"
        item.setToolTip(f"{where} ({severity})\n{message}"
                        + ("\nClick to show the block." if node else ""))
        return item

    def problems(self) -> list[Problem]:
        return list(self._problems)

    def counts(self) -> tuple[int, int]:
        errors = sum(1 for _, s, _ in self._problems if s == "error")
        return errors, len(self._problems) - errors

    def _on_item(self, item: QListWidgetItem) -> None:
        node = item.data(NODE_ROLE)
        if node:
            self.problem_activated.emit(node)

    # ---- look -------------------------------------------------------------------------

    def _make_icons(self) -> dict:
        dark = palette_is_dark(self.palette())
        return {s: severity_icon(s, dark) for s in ("error", "warning")}

    def changeEvent(self, event: QEvent) -> None:
        if event.type() == QEvent.Type.PaletteChange:
            self._icons = self._make_icons()
            for i in range(self.count()):
                item = self.item(i)
                item.setIcon(self._icons.get(item.data(SEVERITY_ROLE), self._icons["warning"]))
        super().changeEvent(event)

    def paintEvent(self, event: QPaintEvent) -> None:
        super().paintEvent(event)
        if self.count() == 0:
            p = QPainter(self.viewport())
            p.setPen(self.palette().color(QPalette.ColorRole.PlaceholderText))
            rect = QRect(self.viewport().rect()).adjusted(8, 8, -8, -8)
            p.drawText(rect, Qt.AlignmentFlag.AlignCenter, "No problems found")
            p.end()
