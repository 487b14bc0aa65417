"""The confusion matrix: counts per (true, predicted) class, tinted by row fraction.

Each cell shows its count; its background is green on the diagonal and red off it, with
an intensity proportional to the cell's share of its row (the true class). A last column
gives each class's accuracy (diagonal / row sum, "—" for a class with no samples), and
the title gives the overall accuracy (trace / total) and the epoch.

For segmentation the matrix counts pixels, which run into the millions: cells then show
compact numbers (1.2M, 35k) with the exact count in the tooltip, the last column is
each class's IoU (diagonal / (row + column − diagonal)), and the title gives pixel
accuracy and mIoU (over the classes whose union is not empty, as the trainer's).
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtGui import QBrush, QColor
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHeaderView,
    QLabel,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

MAX_HEADER_CHARS = 16  # class names longer than this are elided in headers
EMPTY = "—"
_GOOD = (46, 160, 67)  # diagonal tint
_BAD = (218, 54, 51)  # off-diagonal tint


def _elide(name: str, limit: int = MAX_HEADER_CHARS) -> str:
    return name if len(name) <= limit else name[: limit - 1] + "…"


def compact(count: int) -> str:
    """A count in at most four characters or so: 812, 35k, 1.2M, 3.4G."""
    n = int(count)
    units = (("", 1), ("k", 10**3), ("M", 10**6), ("G", 10**9))
    for i, (suffix, size) in enumerate(units):
        value = n / size
        text = str(n) if size == 1 else f"{value:.1f}" if abs(value) < 9.95 else f"{value:.0f}"
        if abs(float(text)) < 1000 or i == len(units) - 1:
            return text.removesuffix(".0") + suffix
    return str(n)  # not reached: the last unit always returns


def _tint(rgb: tuple[int, int, int], fraction: float) -> QColor:
    """The colour at `fraction` (0..1) of full strength, as alpha over the base."""
    alpha = int(round(max(0.0, min(1.0, fraction)) * 200))
    return QColor(rgb[0], rgb[1], rgb[2], alpha)


class ConfusionView(QWidget):
    """A K×K confusion matrix with class names, per-class and overall accuracy."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("confusionView")
        self._title = QLabel(self)
        self._title.setObjectName("confusionTitle")
        self._table = QTableWidget(self)
        self._table.setObjectName("confusionTable")
        self._table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self._table.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
        self._table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self._table.verticalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self._title)
        layout.addWidget(self._table)
        self._matrix: np.ndarray | None = None
        self._classes: list[str] = []
        self._epoch: int | None = None
        self._pixels = False
        self.clear()

    # --- public API -------------------------------------------------------------------

    def set_matrix(self, matrix: np.ndarray, classes: list[str], epoch: int | None = None,
                   *, pixels: bool = False) -> None:
        """Show `matrix` ([true, predicted], K×K non-negative counts) for `classes`;
        `pixels`: it counts pixels of a segmentation (compact counts, IoU column)."""
        m = np.asarray(matrix)
        if m.ndim != 2 or m.shape[0] != m.shape[1]:
            raise ValueError(f"confusion matrix must be square K×K, got shape {m.shape}")
        k = m.shape[0]
        if len(classes) != k:
            raise ValueError(f"{len(classes)} class names for a {k}×{k} matrix")
        self._matrix = m.astype(np.int64, copy=True)
        self._classes = [str(c) for c in classes]
        self._epoch = epoch
        self._pixels = bool(pixels)
        self._fill()

    def clear(self) -> None:
        """Show nothing: no rows, no columns, a placeholder title."""
        self._matrix = None
        self._classes = []
        self._epoch = None
        self._table.clear()
        self._table.setRowCount(0)
        self._table.setColumnCount(0)
        self._title.setText("Confusion matrix: no data")

    def cell_text(self, r: int, c: int) -> str:
        """The text of cell (r, c); column K is the per-class accuracy column."""
        item = self._table.item(r, c)
        return item.text() if item is not None else ""

    def cell_background(self, r: int, c: int) -> QColor:
        item = self._table.item(r, c)
        return item.background().color() if item is not None else QColor()

    def per_class_accuracy(self) -> list[float | None]:
        if self._matrix is None:
            return []
        rows = self._matrix.sum(axis=1)
        diag = np.diag(self._matrix)
        return [float(d) / float(n) if n > 0 else None for d, n in zip(diag, rows, strict=True)]

    def per_class_iou(self) -> list[float | None]:
        """Intersection over union per class; None where the union is empty."""
        if self._matrix is None:
            return []
        diag = np.diag(self._matrix)
        union = self._matrix.sum(axis=0) + self._matrix.sum(axis=1) - diag
        return [float(d) / float(u) if u > 0 else None for d, u in zip(diag, union, strict=True)]

    def mean_iou(self) -> float | None:
        """The mean of per_class_iou over the classes that have one."""
        values = [v for v in self.per_class_iou() if v is not None]
        return sum(values) / len(values) if values else None

    def counts_pixels(self) -> bool:
        return self._matrix is not None and self._pixels

    def overall_accuracy(self) -> float | None:
        if self._matrix is None:
            return None
        total = int(self._matrix.sum())
        return float(np.trace(self._matrix)) / total if total > 0 else None

    def table(self) -> QTableWidget:
        return self._table

    # --- internals --------------------------------------------------------------------

    def _fill(self) -> None:
        assert self._matrix is not None
        m, names = self._matrix, self._classes
        k = m.shape[0]
        table = self._table
        table.clear()
        table.setRowCount(k)
        table.setColumnCount(k + 1)
        table.setVerticalHeaderLabels([f"true: {_elide(n)}" for n in names])
        last = "IoU" if self._pixels else "accuracy"
        table.setHorizontalHeaderLabels([f"pred: {_elide(n)}" for n in names] + [last])
        for i, n in enumerate(names):  # full names stay reachable as tooltips
            table.verticalHeaderItem(i).setToolTip(n)
            table.horizontalHeaderItem(i).setToolTip(n)
        table.horizontalHeaderItem(k).setToolTip(
            "Intersection over union: the class's correct pixels over the pixels that are "
            "it or were predicted as it" if self._pixels else
            "Accuracy per true class (recall): the row's correct share")
        unit = " pixels" if self._pixels else ""
        rows = m.sum(axis=1)
        align = Qt.AlignmentFlag.AlignCenter
        for r in range(k):
            for c in range(k):
                count = int(m[r, c])
                fraction = count / rows[r] if rows[r] > 0 else 0.0
                item = QTableWidgetItem(compact(count) if self._pixels else str(count))
                item.setTextAlignment(align)
                item.setBackground(QBrush(_tint(_GOOD if r == c else _BAD, fraction)))
                item.setToolTip(f"true {names[r]}, predicted {names[c]}: {count:,}{unit} "
                                f"({fraction:.1%} of row)")
                table.setItem(r, c, item)
        per_class = self.per_class_iou() if self._pixels else self.per_class_accuracy()
        for r, value in enumerate(per_class):
            if value is None:
                shown = EMPTY
            else:
                shown = f"{value:.3f}" if self._pixels else f"{value:.1%}"
            item = QTableWidgetItem(shown)
            item.setTextAlignment(align)
            table.setItem(r, k, item)
        overall = self.overall_accuracy()
        if self._pixels:
            miou = self.mean_iou()
            text = (f"Pixel accuracy: {EMPTY if overall is None else f'{overall:.1%}'} · "
                    f"mIoU {EMPTY if miou is None else f'{miou:.3f}'} over "
                    f"{compact(int(m.sum()))} validation pixels")
        else:
            text = f"Overall accuracy: {EMPTY if overall is None else f'{overall:.1%}'}"
        if self._epoch is not None:
            text += f" (epoch {self._epoch})"
        self._title.setText(text)

    def title_text(self) -> str:
        return self._title.text()
