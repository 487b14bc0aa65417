"""Per-class IoU and mIoU per epoch for a segmentation run.

Each class's curve is drawn in its class colour (the one its pixels have in the probe
view and the gallery), so a falling curve points at the glyphs to look for in the
overlay; mIoU is the thick dark line the others are read against. An epoch in which a
class is absent from the validation set (its IoU undefined, NaN or None) gets no point
for that class rather than a zero that would read as "never found".
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QVBoxLayout, QWidget

from .segmentation import colour_of

import pyqtgraph as pg  # isort: skip  (after PySide6, so pyqtgraph binds to it)

MIOU = "mIoU"
_MIOU_COLOUR = "#202020"


class IoUPlot(QWidget):
    """One curve per class plus mIoU, x = epoch, y = IoU from 0 to 1; one run at a time
    (another run may have other classes)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        # the legend sits in its own row under the plot: inside, it would hide the
        # curves' first points, which start near 0, or their last, which end near 1
        self.canvas = pg.GraphicsLayoutWidget()
        self.canvas.setBackground("w")
        self.plot = self.canvas.addPlot(row=0, col=0)
        self.plot.setLabel("left", "validation IoU")
        self.plot.setLabel("bottom", "epoch")
        self.plot.showGrid(x=True, y=True, alpha=0.2)
        self.plot.setYRange(0.0, 1.0, padding=0.02)
        self.plot.getAxis("left").setWidth(64)
        self.plot.getAxis("bottom").setTickSpacing(major=1, minor=1)
        self.plot.setMouseEnabled(x=True, y=False)
        self.legend = pg.LegendItem(labelTextColor="#222", colCount=3, frame=False)
        self.canvas.addItem(self.legend, row=1, col=0)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.canvas)
        self._classes: list[str] = []
        self._items: dict[str, pg.PlotDataItem] = {}
        self._data: dict[str, tuple[list[float], list[float]]] = {}
        self._dark = False

    def start(self, classes: Sequence[str]) -> None:
        """A new run with these class names: the old curves go, one empty curve a class."""
        self.clear()
        self._classes = [str(c) for c in classes]
        for i, name in enumerate(self._classes):
            colour = pg.mkColor(*colour_of(i))
            # class 0 (background, black in the table) is thin and dotted: it is usually
            # near 1 and must not be mistaken for the mIoU line
            style = Qt.PenStyle.DotLine if i == 0 else Qt.PenStyle.SolidLine
            self._add(name, pg.mkPen(colour, width=2, style=style), colour, 6)
        self._add(MIOU, pg.mkPen(_MIOU_COLOUR, width=4), pg.mkColor(_MIOU_COLOUR), 9)

    def add_epoch(self, epoch: int, iou: Sequence[float | None] | None,
                  miou: float | None) -> None:
        """The epoch's validation IoU per class (class order; None or NaN: no point)
        and its mIoU."""
        values = list(iou) if iou is not None else []
        for name, value in zip(self._classes, values, strict=False):
            self._append(name, epoch, value)
        self._append(MIOU, epoch, miou)
        x_max = max((x[-1] for x, _ in self._data.values() if x), default=1)
        self.plot.setXRange(0.5, max(x_max, 1) + 0.5, padding=0)

    def clear(self) -> None:
        for item in self._items.values():
            self.legend.removeItem(item)
            self.plot.removeItem(item)
        self._items.clear()
        self._data.clear()
        self._classes = []

    def set_dark(self, dark: bool) -> None:
        """Follow the application's theme (as TrainingPlots does)."""
        background, ink = ("#1e1f22", "#d0d0d0") if dark else ("w", "#222")
        self.canvas.setBackground(background)
        for name in ("left", "bottom"):
            self.plot.getAxis(name).setPen(ink)
            self.plot.getAxis(name).setTextPen(ink)
        self.legend.setLabelTextColor(ink)
        self._dark = dark

    def is_dark(self) -> bool:
        return self._dark

    def curve_names(self) -> list[str]:
        return list(self._items)

    def curve_data(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """What the curve ``name`` (a class name or "mIoU") draws now."""
        x, y = self._items[name].getData()
        if x is None or y is None:
            return np.empty(0), np.empty(0)
        return np.asarray(x), np.asarray(y)

    def pen_width(self, name: str) -> float:
        return self._items[name].opts["pen"].widthF()

    def legend_labels(self) -> list[str]:
        return [label.text for _, label in self.legend.items]

    # ----------------------------------------------------------- internals
    def _add(self, name: str, pen, colour, symbol_size: int) -> None:
        item = self.plot.plot(pen=pen, symbol="o", symbolSize=symbol_size, symbolBrush=colour,
                              symbolPen=None)
        self.legend.addItem(item, name)
        self._items[name] = item
        self._data[name] = ([], [])

    def _append(self, name: str, epoch: int, value: float | None) -> None:
        if name not in self._items or value is None or not math.isfinite(float(value)):
            return
        xs, ys = self._data[name]
        xs.append(float(epoch))
        ys.append(float(value))
        self._items[name].setData(xs, ys)
