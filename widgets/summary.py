"""A read-only per-layer table: id, type, output shape, params, MACs, receptive field.

It takes plain rows (dicts with the keys of ``convas summary --json``'s nodes), so it
knows nothing of the engine; rows with an ``error`` are tinted and carry the message as
a tooltip, so the cause is visible where the user looks.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtGui import QBrush, QColor
from PySide6.QtWidgets import QAbstractItemView, QHeaderView, QTableWidget, QTableWidgetItem

from engine.units import human_count

COLUMNS = (("id", "Block"), ("type", "Type"), ("output_shape", "Output shape"),
           ("params", "Params"), ("macs", "MACs"), ("receptive_field", "RF"), ("jump", "Jump"),
           ("error", "Problem"))
ERROR_BRUSH = QBrush(QColor(255, 225, 225))


def _cell(key: str, value: Any) -> str:
    if value is None:
        return "?" if key == "output_shape" else ""
    if key == "output_shape":
        return "[" + ", ".join(str(d) for d in value) + "]"
    if key == "params":
        return f"{value:,}"
    if key == "macs":
        return human_count(value) if value else "0"
    return str(value)


class SummaryTable(QTableWidget):
    """Per-layer analysis as a table, one row per block."""

    def __init__(self, parent=None) -> None:
        super().__init__(0, len(COLUMNS), parent)
        self.setHorizontalHeaderLabels([title for _, title in COLUMNS])
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.setAlternatingRowColors(True)
        self.verticalHeader().setVisible(False)
        header = self.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setStretchLastSection(True)

    def set_rows(self, rows: Sequence[dict[str, Any]]) -> None:
        self.setRowCount(len(rows))
        for r, row in enumerate(rows):
            error = row.get("error")
            for c, (key, _) in enumerate(COLUMNS):
                item = QTableWidgetItem(_cell(key, row.get(key)))
                if 3 <= c < len(COLUMNS) - 1:
                    item.setTextAlignment(Qt.AlignmentFlag.AlignRight
                                          | Qt.AlignmentFlag.AlignVCenter)
                if error:
                    item.setBackground(ERROR_BRUSH)
                    item.setToolTip(error)
                self.setItem(r, c, item)

    def row_texts(self, row: int) -> list[str]:
        return [self.item(row, c).text() for c in range(self.columnCount())]
