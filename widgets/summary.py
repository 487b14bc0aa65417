"""A read-only per-layer table: id, type, output shape, params, MACs, receptive field.

It takes plain rows (dicts with the keys of ``convas summary --json``'s nodes), so it
knows nothing of the engine; rows with an ``error`` are tinted and carry the message as
a tooltip, so the cause is visible where the user looks. A row with ``"frozen": True``
(a block training leaves alone, SPEC §8) reads "(frozen)" after its type, greyed.

It is a model/view pair rather than a ``QTableWidget``: after an edit only the rows
that changed are told to the view (``dataChanged``), added and removed blocks become
row insertions and removals, and column widths are measured on those rows alone. A
refill of every cell with columns sized to all contents grew with the square of the
rows (seconds for MobileNetV2, minutes at 1,000 blocks) and froze the whole window.
"""

from __future__ import annotations

import difflib
import heapq
from collections.abc import Mapping, Sequence
from typing import Any

from PySide6.QtCore import (
    QAbstractTableModel,
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    Qt,
    Signal,
)
from PySide6.QtGui import QBrush, QColor
from PySide6.QtWidgets import QAbstractItemView, QHeaderView, QStyle, QTableView, QWidget

from engine.units import human_count

COLUMNS = (("id", "Block"), ("type", "Type"), ("output_shape", "Output shape"),
           ("params", "Params"), ("macs", "MACs"), ("receptive_field", "RF"), ("jump", "Jump"),
           ("error", "Problem"))
ERROR_BRUSH = QBrush(QColor(255, 225, 225))
ERROR_TEXT = QBrush(QColor(90, 0, 0))  # dark on the light tint, in a dark theme too
FROZEN_TEXT = QBrush(QColor(128, 128, 128))  # a frozen block's row: read, not trained
FROZEN_TIP = "Frozen: training keeps this block's weights; its params are not trainable"
NODE_ROLE = int(Qt.ItemDataRole.UserRole)  # the block id of a row, whatever the column
_DISPLAY = int(Qt.ItemDataRole.DisplayRole)
_ALIGNMENT = int(Qt.ItemDataRole.TextAlignmentRole)
_BACKGROUND = int(Qt.ItemDataRole.BackgroundRole)
_FOREGROUND = int(Qt.ItemDataRole.ForegroundRole)
_TOOLTIP = int(Qt.ItemDataRole.ToolTipRole)
_RIGHT = Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter
_NUMERIC = frozenset(range(3, len(COLUMNS) - 1))  # params … jump: right-aligned
_MAX_RANGES = 32  # more scattered changed rows than this are told as one span
AnyIndex = QModelIndex | QPersistentModelIndex


def _texts(row: Mapping[str, Any]) -> tuple[str, ...]:
    """A row's cells as shown: an unknown shape is "?", counts get separators or units.
    Spelled out column by column rather than looped over: an edit near the input
    changes the receptive field of every row, and 1,000 rows are formatted again."""
    get = row.get
    shape, params, macs = get("output_shape"), get("params"), get("macs")
    rf, jump, error = get("receptive_field"), get("jump"), get("error")
    kind = _plain(get("type")) + (" (frozen)" if get("frozen") else "")
    return (_plain(get("id")), kind,
            "?" if shape is None else "[" + ", ".join(map(str, shape)) + "]",
            "" if params is None else f"{params:,}",
            "" if macs is None else human_count(macs) if macs else "0",
            _plain(rf), _plain(jump), _plain(error))


def _plain(value: Any) -> str:
    return "" if value is None else str(value)


def _ranges(rows: list[int]) -> list[tuple[int, int]]:
    """Sorted row numbers as (first, last) runs of consecutive rows."""
    runs: list[tuple[int, int]] = []
    for r in rows:
        if runs and runs[-1][1] == r - 1:
            runs[-1] = (runs[-1][0], r)
        else:
            runs.append((r, r))
    return runs


class SummaryModel(QAbstractTableModel):
    """The rows as the table shows them, updated by difference so views redo little."""

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._ids: list[str] = []
        self._rows: list[Mapping[str, Any]] = []  # the rows given, to compare with
        self._texts: list[tuple[str, ...]] = []

    # ---- what views read ------------------------------------------------------------

    def rowCount(self, parent: AnyIndex = QModelIndex()) -> int:  # noqa: B008 (Qt's API)
        return 0 if parent.isValid() else len(self._texts)

    def columnCount(self, parent: AnyIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(COLUMNS)

    def data(self, index: AnyIndex, role: int = _DISPLAY) -> Any:
        # Called for every role of every visible cell at each paint: plain int roles
        # (looking up Qt's enum members costs more than the rest of this method).
        if role == _DISPLAY:
            return self._texts[index.row()][index.column()]
        if role == _ALIGNMENT:
            return _RIGHT if index.column() in _NUMERIC else None
        if role == _BACKGROUND:
            return ERROR_BRUSH if self._rows[index.row()].get("error") else None
        if role == _FOREGROUND:
            row = self._rows[index.row()]
            return ERROR_TEXT if row.get("error") else FROZEN_TEXT if row.get("frozen") \
                else None
        if role == _TOOLTIP:
            row = self._rows[index.row()]
            return row.get("error") or (FROZEN_TIP if row.get("frozen") else None)
        if role == NODE_ROLE:
            return self._ids[index.row()]
        return None

    def headerData(self, section: int, orientation: Qt.Orientation,
                   role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if (role == Qt.ItemDataRole.DisplayRole and orientation == Qt.Orientation.Horizontal
                and 0 <= section < len(COLUMNS)):
            return COLUMNS[section][1]
        return None

    def texts(self, row: int) -> tuple[str, ...]:
        return self._texts[row]

    def node_id(self, row: int) -> str:
        return self._ids[row]

    # ---- updates --------------------------------------------------------------------

    def set_rows(self, rows: Sequence[Mapping[str, Any]]) -> tuple[list[int], bool]:
        """Make the model show ``rows``. Returns the (new) row numbers whose texts are
        new, so a view measures only those, and whether the model was reset (nothing
        in common with before). Unchanged rows cost a comparison, none when the very
        same dict is given again. The rows are kept, not copied: give new dicts rather
        than changing ones given before."""
        new_rows = list(rows)
        new_ids = [str(r.get("id", "")) for r in new_rows]
        if not self._ids or not new_ids or not set(self._ids) & set(new_ids):
            self.beginResetModel()  # a new document: nothing to keep
            self._ids, self._rows = new_ids, new_rows
            self._texts = [_texts(r) for r in new_rows]
            self.endResetModel()
            return list(range(len(new_rows))), True
        if new_ids == self._ids:
            return self._update(0, new_rows, 0), False
        touched: list[int] = []
        matcher = difflib.SequenceMatcher(None, self._ids, new_ids, autojunk=False)
        # From the end backwards, so the old row numbers still to come stay valid.
        for tag, i1, i2, j1, j2 in reversed(matcher.get_opcodes()):
            if tag == "equal":
                touched += self._update(i1, new_rows[j1:j2], j1)
                continue
            if i2 > i1:  # "delete" or "replace"
                self.beginRemoveRows(QModelIndex(), i1, i2 - 1)
                del self._ids[i1:i2], self._rows[i1:i2], self._texts[i1:i2]
                self.endRemoveRows()
            if j2 > j1:  # "insert" or "replace"
                self.beginInsertRows(QModelIndex(), i1, i1 + j2 - j1 - 1)
                self._ids[i1:i1] = new_ids[j1:j2]
                self._rows[i1:i1] = new_rows[j1:j2]
                self._texts[i1:i1] = [_texts(r) for r in new_rows[j1:j2]]
                self.endInsertRows()
                touched += range(j1, j2)
        return sorted(touched), False

    def _update(self, start: int, rows: list[Mapping[str, Any]], new_start: int) -> list[int]:
        """Replace rows ``start…`` (same ids, same order) and tell views which differ."""
        changed = []
        for k, row in enumerate(rows):
            r = start + k
            old = self._rows[r]
            if row is not old and row != old:  # the error message is a column too
                self._rows[r] = row
                texts = _texts(row)
                if texts != self._texts[r]:
                    self._texts[r] = texts
                    changed.append(r)
        runs = _ranges(changed)
        if len(runs) > _MAX_RANGES:  # many scattered rows: one span is cheaper to tell
            runs = [(runs[0][0], runs[-1][1])]
        last = len(COLUMNS) - 1
        for first, end in runs:
            self.dataChanged.emit(self.index(first, 0), self.index(end, last))
        return [r - start + new_start for r in changed]


class SummaryTable(QTableView):
    """Per-layer analysis as a table, one row per block; a click on a row (or Enter)
    emits the block's id."""

    block_activated = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._model = SummaryModel(self)
        self.setModel(self._model)
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.setAlternatingRowColors(True)
        self.setWordWrap(False)
        self.verticalHeader().setVisible(False)
        # Fixed row heights and interactive columns: nothing is measured per row by Qt.
        self.verticalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Fixed)
        header = self.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        header.setStretchLastSection(True)
        self._fit_columns([], reset=True)
        # Enter (and, where the platform activates on single click, a click) arrives as
        # activated; a plain click must work everywhere, but only once.
        self.activated.connect(self._on_index)
        if not self.style().styleHint(QStyle.StyleHint.SH_ItemView_ActivateItemOnSingleClick,
                                      None, self):
            self.clicked.connect(self._on_index)

    def set_rows(self, rows: Sequence[Mapping[str, Any]]) -> None:
        """Show ``rows`` (one dict per block, in order); only what changed is redone."""
        touched, reset = self._model.set_rows(rows)
        self._fit_columns(touched, reset=reset)

    def row_texts(self, row: int) -> list[str]:
        return list(self._model.texts(row))

    def node_id(self, row: int) -> str:
        return self._model.node_id(row)

    def rowCount(self) -> int:
        """The number of rows, as the table widget this replaces answered."""
        return self._model.rowCount()

    def _fit_columns(self, rows: list[int], reset: bool) -> None:
        """Widen columns to the texts of ``rows`` (all columns but the stretched last).

        Only the few longest texts of each column are measured, and columns never
        shrink while the document stays the same, so nothing jumps under the pointer."""
        header = self.horizontalHeader()
        metrics = self.fontMetrics()
        margin = 2 * (self.style().pixelMetric(QStyle.PixelMetric.PM_FocusFrameHMargin,
                                               None, self) + 1) + 8
        columns = list(zip(*(self._model.texts(r) for r in rows), strict=True)) or \
            [()] * len(COLUMNS)
        for c in range(len(COLUMNS) - 1):
            # The distinct texts near the longest in characters: in a proportional font
            # "BatchNorm" is wider than "Activation", one letter shorter.
            distinct = set(columns[c])
            most = max(map(len, distinct), default=0)
            longest = heapq.nlargest(12, (s for s in distinct if len(s) >= most - 3), key=len)
            width = max([header.sectionSizeHint(c)]
                        + [metrics.horizontalAdvance(t) + margin for t in longest])
            if reset or width > header.sectionSize(c):
                header.resizeSection(c, width)

    def _on_index(self, index: QModelIndex) -> None:
        if index.isValid():
            self.block_activated.emit(self._model.node_id(index.row()))
