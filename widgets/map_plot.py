"""Validation mAP per epoch for a detection run: mAP@0.5 and COCO's mAP@0.5:0.95.

Two curves because they answer two questions: mAP@0.5 rises as soon as the network
puts a box of the right class roughly on each object; mAP@0.5:0.95 rises only as the
boxes fit tightly, so the gap between them is how loose the boxes still are. An epoch
without a value (None or NaN: no true box in the validation set) gets no point rather
than a zero that would read as "found nothing".
"""

from __future__ import annotations

import math

import numpy as np
from PySide6.QtWidgets import QVBoxLayout, QWidget

import pyqtgraph as pg  # isort: skip  (after PySide6, so pyqtgraph binds to it)

MAP50 = "mAP@0.5"
MAP = "mAP@0.5:0.95"
_STYLE = {MAP50: ("#1f77b4", 3), MAP: ("#d62728", 2)}


class MapPlot(QWidget):
    """Two curves, x = epoch, y from 0 to 1; one run at a time."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.canvas = pg.GraphicsLayoutWidget()
        self.canvas.setBackground("w")
        self.plot = self.canvas.addPlot(row=0, col=0)
        self.plot.setLabel("left", "validation mAP")
        self.plot.setLabel("bottom", "epoch")
        self.plot.showGrid(x=True, y=True, alpha=0.2)
        self.plot.setYRange(0.0, 1.0, padding=0.02)
        self.plot.getAxis("left").setWidth(64)
        self.plot.getAxis("bottom").setTickSpacing(major=1, minor=1)
        self.plot.setMouseEnabled(x=True, y=False)
        # under the plot, not inside it: the curves start near 0 and may end near 1
        self.legend = pg.LegendItem(labelTextColor="#222", colCount=2, frame=False)
        self.canvas.addItem(self.legend, row=1, col=0)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.canvas)
        self._items: dict[str, pg.PlotDataItem] = {}
        self._data: dict[str, tuple[list[float], list[float]]] = {}
        self._dark = False
        for name, (colour, width) in _STYLE.items():
            item = self.plot.plot(pen=pg.mkPen(colour, width=width), symbol="o",
                                  symbolSize=3 * width + 2, symbolBrush=pg.mkColor(colour),
                                  symbolPen=None)
            self.legend.addItem(item, name)
            self._items[name] = item
        self.start()

    def start(self) -> None:
        """A new run: the old points go."""
        for name, item in self._items.items():
            self._data[name] = ([], [])
            item.setData([], [])
        self.plot.setXRange(0.5, 1.5, padding=0)

    clear = start

    def add_epoch(self, epoch: int, map50: float | None, map_all: float | None) -> None:
        for name, value in ((MAP50, map50), (MAP, map_all)):
            if value is None or not math.isfinite(float(value)):
                continue
            xs, ys = self._data[name]
            xs.append(float(epoch))
            ys.append(float(value))
            self._items[name].setData(xs, ys)
        x_max = max((x[-1] for x, _ in self._data.values() if x), default=1)
        self.plot.setXRange(0.5, max(x_max, 1) + 0.5, padding=0)

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
        """What the curve ``name`` (MAP50 or MAP) draws now."""
        x, y = self._items[name].getData()
        if x is None or y is None:
            return np.empty(0), np.empty(0)
        return np.asarray(x), np.asarray(y)

    def legend_labels(self) -> list[str]:
        return [label.text for _, label in self.legend.items]
