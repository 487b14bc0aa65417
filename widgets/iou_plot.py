"""Per-class IoU and mIoU per epoch for a segmentation run.

Each class's curve is drawn in its class colour (the one its pixels have in the probe
view and the gallery), so a falling curve points at the glyphs to look for in the
overlay; mIoU is the thick dark line the others are read against. An epoch in which a
class is absent from the validation set (its IoU undefined, NaN or None) gets no point
for that class rather than a zero that would read as "never found".
"""

from __future__ import annotations

from collections.abc import Sequence

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QWidget

from .epoch_plot import EpochPlot
from .segmentation import colour_of

import pyqtgraph as pg  # isort: skip  (after PySide6, so pyqtgraph binds to it)

MIOU = "mIoU"
_MIOU_COLOUR = "#202020"


class IoUPlot(EpochPlot):
    """One curve per class plus mIoU, x = epoch, y = IoU from 0 to 1; one run at a time
    (another run may have other classes)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("validation IoU", 3, parent)
        self._classes: list[str] = []

    def start(self, classes: Sequence[str]) -> None:
        """A new run with these class names: the old curves go, one empty curve a class."""
        self.clear()
        self._classes = [str(c) for c in classes]
        for i, name in enumerate(self._classes):
            colour = pg.mkColor(*colour_of(i))
            # class 0 (background, black in the table) is thin and dotted: it is usually
            # near 1 and must not be mistaken for the mIoU line
            style = Qt.PenStyle.DotLine if i == 0 else Qt.PenStyle.SolidLine
            self.add_curve(name, pg.mkPen(colour, width=2, style=style), colour, 6)
        self.add_curve(MIOU, pg.mkPen(_MIOU_COLOUR, width=4), pg.mkColor(_MIOU_COLOUR), 9)

    def add_epoch(self, epoch: int, iou: Sequence[float | None] | None,
                  miou: float | None) -> None:
        """The epoch's validation IoU per class (class order; None or NaN: no point)
        and its mIoU."""
        values = list(iou) if iou is not None else []
        for name, value in zip(self._classes, values, strict=False):
            self.add_point(name, epoch, value)
        self.add_point(MIOU, epoch, miou)
        self.fit_epochs()

    def clear(self) -> None:
        self.remove_curves()
        self._classes = []
