"""Validation mAP per epoch for a detection run: mAP@0.5 and COCO's mAP@0.5:0.95.

Two curves because they answer two questions: mAP@0.5 rises as soon as the network
puts a box of the right class roughly on each object; mAP@0.5:0.95 rises only as the
boxes fit tightly, so the gap between them is how loose the boxes still are. An epoch
without a value (None or NaN: no true box in the validation set) gets no point rather
than a zero that would read as "found nothing".
"""

from __future__ import annotations

from PySide6.QtWidgets import QWidget

from .epoch_plot import EpochPlot

import pyqtgraph as pg  # isort: skip  (after PySide6, so pyqtgraph binds to it)

MAP50 = "mAP@0.5"
MAP = "mAP@0.5:0.95"
_STYLE = {MAP50: ("#1f77b4", 3), MAP: ("#d62728", 2)}


class MapPlot(EpochPlot):
    """Two curves, x = epoch, y from 0 to 1; one run at a time."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("validation mAP", 2, parent)
        for name, (colour, width) in _STYLE.items():
            self.add_curve(name, pg.mkPen(colour, width=width), pg.mkColor(colour),
                           3 * width + 2)
        self.start()

    def start(self) -> None:
        """A new run: the old points go."""
        self.empty_curves()

    clear = start

    def add_epoch(self, epoch: int, map50: float | None, map_all: float | None) -> None:
        """The epoch's validation mAP@0.5 and mAP@0.5:0.95 (None or NaN: no point)."""
        self.add_point(MAP50, epoch, map50)
        self.add_point(MAP, epoch, map_all)
        self.fit_epochs()
