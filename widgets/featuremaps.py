"""What a block sees: its activations for one probe image, or first-layer kernels.

All channels are tiled into one mosaic drawn by a single ``ImageItem`` with a
colour map and fixed levels (as in pyqtgraph's ``VideoSpeedTest.py``): one
``setImage`` per update, no per-channel items and no level search, so refreshing
twice a second during training stays cheap.  Beside it: the probe image (one of a few
validation images, switchable), a convolution's learned kernels, a histogram of the
raw values and a count of dead channels.
"""

from __future__ import annotations

import math

import numpy as np
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QSpinBox,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

import pyqtgraph as pg  # isort: skip  (after PySide6, so pyqtgraph binds to it)

MAX_CHANNELS = 256
GAP = 1
LABEL_MIN_TILE = 12  # tiles smaller than this (pixels of data) get no channel number
LABEL_MAX_TILES = 64
HIST_BINS = 40


def grid_for(count: int) -> tuple[int, int]:
    """Near-square (rows, cols) with cols >= rows, so wide screens are filled first."""
    if count <= 0:
        return 0, 0
    cols = math.ceil(math.sqrt(count))
    return math.ceil(count / cols), cols


def normalise_channels(maps: np.ndarray) -> np.ndarray:
    """Scale each channel to 0..1 on its own; a constant channel becomes all zeros."""
    maps = np.asarray(maps, dtype=np.float32)
    flat = maps.reshape(maps.shape[0], -1)
    finite = np.isfinite(flat)
    lo = np.where(finite, flat, np.inf).min(axis=1, initial=np.inf)
    hi = np.where(finite, flat, -np.inf).max(axis=1, initial=-np.inf)
    span = hi - lo
    ok = np.isfinite(span) & (span > 0)
    base = np.where(ok, lo, 0.0)[:, None]
    scale = np.where(ok, span, 1.0)[:, None]
    out = np.where(finite & ok[:, None], (np.where(finite, flat, 0.0) - base) / scale, 0.0)
    return out.astype(np.float32).reshape(maps.shape)


def tile(maps: np.ndarray, gap: int = GAP) -> tuple[np.ndarray, int, int]:
    """Tile [C,H,W] (or [C,H,W,3]) into one image with NaN gaps, which draw transparent."""
    count, h, w = maps.shape[:3]
    rows, cols = grid_for(count)
    extra = maps.shape[3:]
    mosaic = np.full((rows * h + (rows - 1) * gap, cols * w + (cols - 1) * gap, *extra),
                     np.nan, dtype=np.float32)
    for i in range(count):
        r, c = divmod(i, cols)
        y, x = r * (h + gap), c * (w + gap)
        mosaic[y:y + h, x:x + w] = maps[i]
    return mosaic, rows, cols


def _image_view(widget: pg.GraphicsLayoutWidget) -> tuple[pg.ViewBox, pg.ImageItem]:
    view = widget.addViewBox(lockAspect=True, invertY=True, enableMenu=False)
    item = pg.ImageItem(axisOrder="row-major")
    view.addItem(item)
    return view, item


def kernel_tiles(weights: np.ndarray) -> tuple[np.ndarray, bool, str]:
    """Tiles for [out,in,kh,kw] kernels: RGB for in=3, one per filter otherwise.

    For in=1 and in=3 (a first layer) each filter is exactly what it looks for in the
    image. Deeper filters have many input slices; their mean over inputs keeps one
    tile per filter, which is what the mosaic next to it counts.
    """
    w = np.asarray(weights, dtype=np.float32)
    if w.ndim != 4:
        raise ValueError(f"expected [out,in,kh,kw], got shape {w.shape}")
    out, inp, kh, kw = w.shape
    if inp == 3:
        flat = normalise_channels(w.reshape(out, 3 * kh, kw)).reshape(out, 3, kh, kw)
        return np.moveaxis(flat, 1, -1), True, f"kernels {out}×3×{kh}×{kw} (RGB)"
    if inp == 1:
        return normalise_channels(w[:, 0]), False, f"kernels {out}×1×{kh}×{kw}"
    return (normalise_channels(w.mean(axis=1)), False,
            f"kernels {out}×{inp}×{kh}×{kw} (mean over inputs)")


class FeatureMapView(QWidget):
    """Probe + kernels | mosaic (or bar chart for vectors) | histogram + dead channels."""

    probe_requested = Signal(int)  # the index of the probe image the user picked

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._cmap = pg.colormap.get("viridis")
        self._grid = (0, 0)
        self._mosaic_shape = (0, 0)
        self._dead = (0, 0)
        self._texts: list[pg.TextItem] = []

        self.title = QLabel("no activations yet: select a block, then train")
        self.probe_widget = pg.GraphicsLayoutWidget()
        self.probe_widget.setFixedSize(140, 140)
        self._probe_view, self.probe_item = _image_view(self.probe_widget)
        self.probe_spin = QSpinBox()
        self.probe_spin.setRange(1, 1)
        self.probe_spin.setPrefix("probe image ")
        self.probe_spin.setToolTip("Which validation image the activations are shown for")
        self.probe_spin.valueChanged.connect(lambda v: self.probe_requested.emit(v - 1))
        self.kernel_title = QLabel("")
        self.kernel_title.setWordWrap(True)
        self.kernel_widget = pg.GraphicsLayoutWidget()
        self.kernel_widget.setFixedSize(140, 140)
        self._kernel_view, self.kernel_item = _image_view(self.kernel_widget)
        self.kernel_item.setColorMap(self._cmap)
        self._kernel_grid = (0, 0)
        self.kernel_widget.hide()

        self.mosaic_widget = pg.GraphicsLayoutWidget()
        self._mosaic_view, self.mosaic_item = _image_view(self.mosaic_widget)
        self.mosaic_item.setColorMap(self._cmap)
        self.bar_plot = pg.PlotWidget()
        self.bar_plot.setLabel("bottom", "feature")
        self.bar_item = pg.BarGraphItem(x=[], height=[], width=0.8, brush="#1f77b4")
        self.bar_plot.addItem(self.bar_item)
        self.stack = QStackedWidget()
        self.stack.addWidget(self.mosaic_widget)
        self.stack.addWidget(self.bar_plot)

        self.hist_plot = pg.PlotWidget()
        self.hist_plot.setLabel("bottom", "value")
        self.hist_plot.setFixedWidth(220)
        self.hist_item = self.hist_plot.plot(stepMode="center", fillLevel=0,
                                             brush=(31, 119, 180, 120), pen="#1f77b4")
        self.dead_label = QLabel("")
        self.note_label = QLabel("")
        self.note_label.setWordWrap(True)

        side = QVBoxLayout()
        side.addWidget(self.hist_plot, 1)
        side.addWidget(self.dead_label)
        side.addWidget(self.note_label)
        left = QVBoxLayout()
        left.addWidget(self.probe_widget)
        left.addWidget(self.probe_spin)
        left.addWidget(self.kernel_title)
        left.addWidget(self.kernel_widget)
        left.addStretch(1)
        row = QHBoxLayout()
        row.addLayout(left)
        row.addWidget(self.stack, 1)
        row.addLayout(side)
        layout = QVBoxLayout(self)
        layout.addWidget(self.title)
        layout.addLayout(row, 1)

    # ----------------------------------------------------------------- API
    def show_maps(self, node_id: str, maps: np.ndarray) -> None:
        """Show activations of ``node_id``: [C,H,W] as a mosaic, [F] as bars."""
        maps = np.asarray(maps, dtype=np.float32)
        if maps.ndim == 1:
            self._show_vector(node_id, maps)
            return
        if maps.ndim == 2:  # [H,W]: a single channel
            maps = maps[None]
        if maps.ndim != 3:
            raise ValueError(f"expected [C,H,W] or [F], got shape {maps.shape}")
        count = maps.shape[0]
        self._dead = (int(np.sum(self._channel_max(maps) <= 0)), count)
        shown = maps[:MAX_CHANNELS]
        self._set_mosaic(normalise_channels(shown), rgb=False)
        self.title.setText(f"{node_id} — {count}×{maps.shape[1]}×{maps.shape[2]}")
        self.note_label.setText(
            f"showing {MAX_CHANNELS} of {count} channels" if count > MAX_CHANNELS else "")
        self._set_dead_label("dead channels")
        self._set_histogram(maps)

    def show_probe(self, image: np.ndarray) -> None:
        """The probe input, [C,H,W] or [H,W]: 0..1 is kept, other ranges are stretched."""
        img = np.asarray(image, dtype=np.float32)
        if img.ndim == 3:
            img = np.moveaxis(img, 0, -1) if img.shape[0] == 3 else img.mean(axis=0)
        if img.ndim not in (2, 3):
            raise ValueError(f"expected [C,H,W] or [H,W], got shape {np.shape(image)}")
        img = np.nan_to_num(img, nan=0.0, posinf=0.0, neginf=0.0)
        lo, hi = (float(img.min()), float(img.max())) if img.size else (0.0, 0.0)
        if lo < 0.0 or hi > 1.0:  # already 0..1 is shown as is, so a dark image stays dark
            img = (img - lo) / (hi - lo) if hi > lo else np.full_like(img, 0.5)
        self.probe_item.setImage(img, autoLevels=False, levels=(0.0, 1.0))
        self._probe_view.autoRange(padding=0)

    def set_probe_count(self, count: int, current: int = 0) -> None:
        """How many probe images there are to choose from (the spin box counts from 1)."""
        self.probe_spin.blockSignals(True)
        self.probe_spin.setRange(1, max(1, count))
        self.probe_spin.setValue(min(max(current, 0), max(count - 1, 0)) + 1)
        self.probe_spin.blockSignals(False)
        self.probe_spin.setEnabled(count > 1)

    def show_kernels(self, weights: np.ndarray | None) -> None:
        """A convolution's kernels [out,in,kh,kw] beside its maps; None hides them."""
        if weights is None:
            self.kernel_widget.hide()
            self.kernel_title.setText("")
            self._kernel_grid = (0, 0)
            return
        tiles, rgb, text = kernel_tiles(weights)
        mosaic, rows, cols = tile(tiles[:MAX_CHANNELS])
        self._kernel_grid = (rows, cols)
        if rgb:
            self.kernel_item.setLookupTable(None)
        else:
            self.kernel_item.setColorMap(self._cmap)
        self.kernel_item.setImage(mosaic, autoLevels=False, levels=(0.0, 1.0))
        self._kernel_view.autoRange(padding=0.01)
        self.kernel_title.setText(text)
        self.kernel_widget.show()

    def kernel_grid(self) -> tuple[int, int]:
        return self._kernel_grid

    def mosaic_shape(self) -> tuple[int, int]:
        return self._mosaic_shape

    def tile_grid(self) -> tuple[int, int]:
        return self._grid

    def dead_channels(self) -> tuple[int, int]:
        return self._dead

    def showing_bars(self) -> bool:
        return self.stack.currentWidget() is self.bar_plot

    # ----------------------------------------------------------- internals
    @staticmethod
    def _channel_max(maps: np.ndarray) -> np.ndarray:
        flat = np.nan_to_num(maps.reshape(maps.shape[0], -1), nan=0.0, posinf=1.0, neginf=0.0)
        return flat.max(axis=1) if flat.shape[1] else np.zeros(len(flat))

    def _set_mosaic(self, tiles: np.ndarray, rgb: bool) -> None:
        mosaic, rows, cols = tile(tiles)
        self._grid = (rows, cols)
        self._mosaic_shape = (mosaic.shape[0], mosaic.shape[1])
        if rgb:
            self.mosaic_item.setLookupTable(None)
        else:
            self.mosaic_item.setColorMap(self._cmap)
        self.mosaic_item.setImage(mosaic, autoLevels=False, levels=(0.0, 1.0))
        self._place_labels(len(tiles), rows, cols, tiles.shape[1], tiles.shape[2])
        self.stack.setCurrentWidget(self.mosaic_widget)
        self._mosaic_view.autoRange(padding=0.01)

    def _place_labels(self, count: int, rows: int, cols: int, h: int, w: int) -> None:
        """Channel numbers only where they fit; items are pooled and reused."""
        wanted = count if (min(h, w) >= LABEL_MIN_TILE and count <= LABEL_MAX_TILES) else 0
        while len(self._texts) < wanted:
            text = pg.TextItem(color="w", anchor=(0, 0))
            text.setZValue(5)
            self._mosaic_view.addItem(text)
            self._texts.append(text)
        for i, text in enumerate(self._texts):
            if i < wanted:
                r, c = divmod(i, cols)
                text.setText(str(i))
                text.setPos(c * (w + GAP), r * (h + GAP))
            text.setVisible(i < wanted)

    def _show_vector(self, node_id: str, values: np.ndarray) -> None:
        values = np.nan_to_num(values)
        count = len(values)
        self._dead = (int(np.sum(values <= 0)), count)
        self._grid, self._mosaic_shape = (0, 0), (0, 0)
        self.bar_item.setOpts(x=np.arange(count), height=values, width=0.8)
        self.bar_plot.autoRange()
        self.stack.setCurrentWidget(self.bar_plot)
        self.title.setText(f"{node_id} — {count} features")
        self.note_label.setText("")
        self._set_dead_label("inactive units")
        self._set_histogram(values)

    def _set_dead_label(self, what: str) -> None:
        dead, total = self._dead
        pct = 100.0 * dead / total if total else 0.0
        self.dead_label.setText(f"{what}: {dead} of {total} ({pct:.0f} %)")
        self.dead_label.setAlignment(Qt.AlignmentFlag.AlignLeft)

    def _set_histogram(self, values: np.ndarray) -> None:
        flat = values[np.isfinite(values)].ravel()
        if flat.size == 0:
            self.hist_item.setData([], [])
            return
        lo, hi = float(flat.min()), float(flat.max())
        if hi <= lo:
            lo, hi = lo - 0.5, hi + 0.5
        counts, edges = np.histogram(flat, bins=HIST_BINS, range=(lo, hi))
        self.hist_item.setData(edges, counts, stepMode="center", fillLevel=0)
