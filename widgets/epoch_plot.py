"""A validation metric per epoch, one curve a series, y from 0 to 1: the frame that the
mAP curves of a detection run (``map_plot``) and the IoU curves of a segmentation run
(``iou_plot``) share, so both look, scale and follow the theme alike.

An epoch without a value (None or NaN: the metric is undefined there, e.g. a class
absent from the validation set) gets no point rather than a zero that would read as
"found nothing". The legend sits in its own row under the plot: inside, it would hide
the curves' first points, which start near 0, or their last, which end near 1.
"""

from __future__ import annotations

import math

import numpy as np
from PySide6.QtWidgets import QVBoxLayout, QWidget

import pyqtgraph as pg  # isort: skip  (after PySide6, so pyqtgraph binds to it)


class EpochPlot(QWidget):
    """Curves x = epoch, y = ``y_label`` from 0 to 1, added with ``add_curve`` and fed
    with ``add_point``; one run at a time."""

    def __init__(self, y_label: str, legend_columns: int,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.canvas = pg.GraphicsLayoutWidget()
        self.canvas.setBackground("w")
        self.plot = self.canvas.addPlot(row=0, col=0)
        self.plot.setLabel("left", y_label)
        self.plot.setLabel("bottom", "epoch")
        self.plot.showGrid(x=True, y=True, alpha=0.2)
        self.plot.setYRange(0.0, 1.0, padding=0.02)
        self.plot.getAxis("left").setWidth(64)
        self.plot.getAxis("bottom").setTickSpacing(major=1, minor=1)
        self.plot.setMouseEnabled(x=True, y=False)
        self.legend = pg.LegendItem(labelTextColor="#222", colCount=legend_columns,
                                    frame=False)
        self.canvas.addItem(self.legend, row=1, col=0)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.canvas)
        self._items: dict[str, pg.PlotDataItem] = {}
        self._data: dict[str, tuple[list[float], list[float]]] = {}
        self._dark = False

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
        """What the curve ``name`` draws now."""
        x, y = self._items[name].getData()
        if x is None or y is None:
            return np.empty(0), np.empty(0)
        return np.asarray(x), np.asarray(y)

    def pen_width(self, name: str) -> float:
        return self._items[name].opts["pen"].widthF()

    def legend_labels(self) -> list[str]:
        return [label.text for _, label in self.legend.items]

    # ------------------------------------------------------- for subclasses
    def add_curve(self, name: str, pen, colour, symbol_size: int) -> None:
        """An empty curve ``name`` with round markers, listed in the legend."""
        item = self.plot.plot(pen=pen, symbol="o", symbolSize=symbol_size, symbolBrush=colour,
                              symbolPen=None)
        self.legend.addItem(item, name)
        self._items[name] = item
        self._data[name] = ([], [])

    def empty_curves(self) -> None:
        """A new run with the same curves: their points go."""
        for name, item in self._items.items():
            self._data[name] = ([], [])
            item.setData([], [])
        self.plot.setXRange(0.5, 1.5, padding=0)

    def remove_curves(self) -> None:
        """A new run with other curves: the curves go, legend entries too."""
        for item in self._items.values():
            self.legend.removeItem(item)
            self.plot.removeItem(item)
        self._items.clear()
        self._data.clear()

    def add_point(self, name: str, epoch: int, value: float | None) -> None:
        """Epoch ``epoch``'s ``value`` on curve ``name``; none for a missing value (or an
        unknown curve)."""
        if name not in self._items or value is None or not math.isfinite(float(value)):
            return
        xs, ys = self._data[name]
        xs.append(float(epoch))
        ys.append(float(value))
        self._items[name].setData(xs, ys)

    def fit_epochs(self) -> None:
        """The x range: every epoch so far, at least the first."""
        x_max = max((x[-1] for x, _ in self._data.values() if x), default=1)
        self.plot.setXRange(0.5, max(x_max, 1) + 0.5, padding=0)
