"""Live training curves: loss, accuracy and learning rate, several runs at once.

Modelled on pyqtgraph's ``scrollingPlots.py``: data go into preallocated numpy
buffers (doubled when full) and the curves are redrawn by a single-shot 50 ms
timer, so a trainer reporting thousands of steps per second costs one cheap
append per step and at most twenty redraws per second.  Earlier runs stay on the
plots, dimmed, so two designs can be compared side by side.
"""

from __future__ import annotations

import math

import numpy as np
from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import QCheckBox, QHBoxLayout, QPushButton, QVBoxLayout, QWidget

import pyqtgraph as pg  # isort: skip  (after PySide6, so pyqtgraph binds to it)

REDRAW_MS = 50
MAX_RUNS = 5
SMOOTHING = 0.9  # EMA decay per optimiser step (~10-step memory), whatever the report rate
CURVE_NAMES = ("loss", "loss_smooth", "acc", "val_loss", "train_acc", "val_acc", "lr")
_COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b")


class _Series:
    """An (x, y) column pair that grows by doubling, so appends are amortised O(1)."""

    def __init__(self, capacity: int = 1024) -> None:
        self._x = np.empty(capacity, dtype=np.float64)
        self._y = np.empty(capacity, dtype=np.float64)
        self.n = 0

    def append(self, x: float, y: float) -> None:
        if self.n == len(self._x):
            self._x = np.resize(self._x, 2 * self.n)
            self._y = np.resize(self._y, 2 * self.n)
        self._x[self.n] = x
        self._y[self.n] = y
        self.n += 1

    def data(self) -> tuple[np.ndarray, np.ndarray]:
        """Views of the filled part; later appends never touch them in place."""
        return self._x[: self.n], self._y[: self.n]


class _Run:
    """One training run: its buffers and the plot items that draw them."""

    def __init__(self, label: str, colour: str) -> None:
        self.label = label
        self.colour = colour
        self.series = {name: _Series() for name in CURVE_NAMES}
        self.items: dict[str, pg.PlotDataItem] = {}
        self.ema_sum = 0.0      # debiased EMA (as TensorBoard's): ema_sum / ema_weight
        self.ema_weight = 0.0
        self.last_step: int | None = None
        self.steps = 0


class PercentAxis(pg.AxisItem):
    """Shows fractions 0..1 as percentages so the data can stay in 0..1."""

    def tickStrings(self, values, scale, spacing):  # noqa: N802 — Qt override
        return [f"{v * 100:.0f} %" for v in values]


class TrainingPlots(QWidget):
    """Three stacked plots sharing the step axis; fed by plain numbers only."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._runs: list[_Run] = []
        self._dirty = False
        self._run_counter = 0
        self._log = False
        self._dark = False

        self.loss_plot = self._make_plot("loss")
        self.loss_plot.getAxis("left").enableAutoSIPrefix(False)  # no "loss (x0.001)"
        self.acc_plot = self._make_plot("accuracy", axisItems={"left": PercentAxis("left")})
        self.acc_plot.setYRange(0.0, 1.0, padding=0.02)
        self.lr_plot = self._make_plot("learning rate")
        self.lr_plot.setLabel("bottom", "step")
        self.lr_plot.getAxis("left").enableAutoSIPrefix(False)  # "(x0.001)" gets clipped
        self.acc_plot.setXLink(self.loss_plot)
        self.lr_plot.setXLink(self.loss_plot)
        self.legend = self.loss_plot.addLegend(offset=(-10, 10), labelTextColor="#222")

        self.log_box = QCheckBox("Log-scale loss")
        self.log_box.setToolTip("Early and late losses differ by orders of magnitude")
        self.log_box.toggled.connect(self.set_log_scale)
        self.clear_button = QPushButton("Clear earlier runs")
        self.clear_button.setToolTip("Keep only the latest run on the plots")
        self.clear_button.clicked.connect(self.clear_earlier)
        bar = QHBoxLayout()
        bar.setContentsMargins(4, 0, 4, 0)
        bar.addWidget(self.log_box)
        bar.addStretch(1)
        bar.addWidget(self.clear_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(bar)
        for plot in (self.loss_plot, self.acc_plot, self.lr_plot):
            layout.addWidget(plot, 1)

        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(REDRAW_MS)
        self._timer.timeout.connect(self._redraw)

    @staticmethod
    def _make_plot(title: str, **kwargs) -> pg.PlotWidget:
        plot = pg.PlotWidget(**kwargs)
        plot.setBackground("w")
        plot.setLabel("left", title)
        plot.showGrid(x=True, y=True, alpha=0.2)
        plot.getAxis("left").setWidth(64)  # equal widths keep the linked step axes aligned
        plot.setDownsampling(auto=True, mode="peak")
        plot.setClipToView(True)
        return plot

    # ----------------------------------------------------------------- API
    def start_run(self, label: str) -> None:
        """Begin a new run; earlier ones are dimmed and the oldest beyond MAX_RUNS dropped."""
        self._flush()  # the old current run gets its final data before it is dimmed
        for run in self._runs:
            self._dim(run)
        while len(self._runs) >= MAX_RUNS:
            self._remove(self._runs.pop(0))
        colour = _COLOURS[self._run_counter % len(_COLOURS)]
        self._run_counter += 1
        run = _Run(label, colour)
        self._create_items(run)
        self._runs.append(run)

    def add_step(self, step: int, loss: float, accuracy: float, lr: float) -> None:
        """Record one optimiser step; non-finite losses are dropped, not plotted."""
        run = self._current()
        run.steps += 1
        if math.isfinite(loss):
            # Reports come throttled (one point may average many steps), so the decay
            # follows the steps between points; debiasing keeps the start from lagging.
            gap = max(1, step - run.last_step) if run.last_step is not None else 1
            decay = SMOOTHING ** gap
            run.ema_sum = decay * run.ema_sum + (1 - decay) * loss
            run.ema_weight = decay * run.ema_weight + (1 - decay)
            run.last_step = step
            run.series["loss"].append(step, loss)
            run.series["loss_smooth"].append(step, run.ema_sum / run.ema_weight)
        if math.isfinite(accuracy):
            run.series["acc"].append(step, accuracy)
        if math.isfinite(lr):
            run.series["lr"].append(step, lr)
        self._mark_dirty()

    def add_epoch(
        self,
        step: int,
        epoch: int,
        train_loss: float,
        train_acc: float,
        val_loss: float | None,
        val_acc: float | None,
    ) -> None:
        """Record an epoch end at global ``step`` so epoch points share the step axis."""
        del epoch, train_loss  # the per-step curves already show training loss
        run = self._current()
        if math.isfinite(train_acc):
            run.series["train_acc"].append(step, train_acc)
        if val_loss is not None and math.isfinite(val_loss):
            run.series["val_loss"].append(step, val_loss)
        if val_acc is not None and math.isfinite(val_acc):
            run.series["val_acc"].append(step, val_acc)
        self._mark_dirty()

    def set_dark(self, dark: bool) -> None:
        """Follow the application's theme: a white plot in a dark window glares."""
        background, ink = ("#1e1f22", "#d0d0d0") if dark else ("w", "#222")
        for plot in (self.loss_plot, self.acc_plot, self.lr_plot):
            plot.setBackground(background)
            for name in ("left", "bottom"):
                axis = plot.getAxis(name)
                axis.setPen(ink)
                axis.setTextPen(ink)
        self.legend.setLabelTextColor(ink)
        self._dark = dark

    def set_accuracy_label(self, text: str) -> None:
        """What the accuracy plot counts: "accuracy" of images, or "pixel accuracy" for
        a segmentation run, whose step accuracy is over labelled pixels."""
        self.acc_plot.setLabel("left", text)

    def accuracy_label(self) -> str:
        return self.acc_plot.getAxis("left").labelText

    def is_dark(self) -> bool:
        return self._dark

    def set_log_scale(self, flag: bool) -> None:
        """Logarithmic loss axis: early and late losses differ by orders of magnitude."""
        self._log = bool(flag)
        self.loss_plot.setLogMode(x=False, y=self._log)
        if self.log_box.isChecked() != self._log:
            self.log_box.setChecked(self._log)

    def is_log_scale(self) -> bool:
        return self._log

    def clear(self) -> None:
        """Forget every run and its curves."""
        self._timer.stop()
        self._dirty = False
        for run in self._runs:
            self._remove(run)
        self._runs.clear()

    def clear_earlier(self) -> None:
        """Drop every run but the latest (the one that may still be training)."""
        for run in self._runs[:-1]:
            self._remove(run)
        del self._runs[:-1]

    def run_count(self) -> int:
        return len(self._runs)

    def run_labels(self) -> list[str]:
        return [run.label for run in self._runs]

    def point_count(self, run: int = -1) -> int:
        """Steps recorded for ``run`` (buffered, whether drawn yet or not)."""
        return self._runs[run].steps if self._runs else 0

    def curve_data(self, name: str, run: int = -1) -> tuple[np.ndarray, np.ndarray]:
        """What the curve item currently draws (full data, before view downsampling)."""
        if name not in CURVE_NAMES:
            raise KeyError(name)
        if not self._runs:
            return np.empty(0), np.empty(0)
        x, y = self._runs[run].items[name].getOriginalDataset()
        if x is None or y is None:
            return np.empty(0), np.empty(0)
        return np.asarray(x), np.asarray(y)

    # ----------------------------------------------------------- internals
    def _current(self) -> _Run:
        if not self._runs:
            self.start_run(f"run {self._run_counter + 1}")
        return self._runs[-1]

    def _mark_dirty(self) -> None:
        self._dirty = True
        if not self._timer.isActive():
            self._timer.start()

    def _flush(self) -> None:
        if self._dirty:
            self._timer.stop()
            self._redraw()

    def _redraw(self) -> None:
        """Push the current run's buffers to its items; older runs never change."""
        self._dirty = False
        if not self._runs:
            return
        run = self._runs[-1]
        for name, item in run.items.items():
            x, y = run.series[name].data()
            item.setData(x, y)
        self._fit_lr_axis()

    def _fit_lr_axis(self) -> None:
        """From 0 to just above the largest rate: a constant rate is a visible level line
        (auto-range would centre it on a ±0.5 span and label it 0)."""
        top = max((float(r.series["lr"].data()[1].max()) for r in self._runs
                   if r.series["lr"].n), default=0.0)
        if top > 0:
            self.lr_plot.setYRange(0.0, top * 1.1, padding=0)

    def _create_items(self, run: _Run) -> None:
        c = pg.mkColor(run.colour)
        faint = pg.mkColor(c)
        faint.setAlpha(70)
        lp, ap = self.loss_plot, self.acc_plot
        run.items = {
            "loss": lp.plot(pen=pg.mkPen(faint, width=1)),
            "loss_smooth": lp.plot(pen=pg.mkPen(c, width=2), name=run.label),
            "val_loss": lp.plot(
                pen=pg.mkPen(c, width=2, style=Qt.PenStyle.DashLine),
                symbol="o", symbolSize=6, symbolBrush=c, symbolPen=None,
            ),
            "acc": ap.plot(pen=pg.mkPen(faint, width=1)),
            "train_acc": ap.plot(pen=pg.mkPen(c, width=2), symbol="s", symbolSize=6,
                                 symbolBrush=c, symbolPen=None),
            "val_acc": ap.plot(
                pen=pg.mkPen(c, width=2, style=Qt.PenStyle.DashLine),
                symbol="o", symbolSize=6, symbolBrush=c, symbolPen=None,
            ),
            "lr": self.lr_plot.plot(pen=pg.mkPen(c, width=2)),
        }
        for item in run.items.values():
            item.setZValue(10)

    def _dim(self, run: _Run) -> None:
        """Older runs fade to the background so the live one reads first."""
        for item in run.items.values():
            item.setOpacity(0.35)
            item.setZValue(0)

    def _remove(self, run: _Run) -> None:
        self.legend.removeItem(run.items["loss_smooth"])
        for name, item in run.items.items():
            self._plot_for(name).removeItem(item)
        run.items.clear()

    def _plot_for(self, name: str) -> pg.PlotItem:
        if name == "lr":
            return self.lr_plot.getPlotItem()
        if name in ("acc", "train_acc", "val_acc"):
            return self.acc_plot.getPlotItem()
        return self.loss_plot.getPlotItem()
