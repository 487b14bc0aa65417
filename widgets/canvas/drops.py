"""Blocks dragged in from the palette: reading the payload, and a dashed ghost that
shows where the block will land while the drag hovers over the canvas.

The ghost puts the block's top-left at the drop point, which is what
`block_dropped` reports and where the document places a new block.
"""

from __future__ import annotations

from PySide6.QtCore import QMimeData, QPoint, QPointF, QRectF, Qt
from PySide6.QtGui import QPainter, QPen

from .interactions import Interaction
from .model import BLOCK_MIME
from .node_item import HEIGHT, RADIUS, WIDTH


def block_name(mime: QMimeData) -> str | None:
    """The block type a drag carries, or None when it is not a palette drag."""
    if not mime.hasFormat(BLOCK_MIME):
        return None
    name = bytes(mime.data(BLOCK_MIME).data()).decode("utf-8", errors="replace").strip()
    return name or None


class DropPreview(Interaction):
    """Active while a palette drag hovers the canvas; draws the landing ghost."""

    at: QPointF | None = None

    def move(self, view_pos: QPoint, scene_pos: QPointF) -> None:
        self._repaint()
        self.at = scene_pos
        self._repaint()

    def cancel(self) -> None:
        self._repaint()
        self.at = None

    def _repaint(self) -> None:
        if self.at is not None:
            self.canvas.scene_.update(QRectF(self.at.x() - 4, self.at.y() - 4,
                                             WIDTH + 8, HEIGHT + 8))

    def draw_foreground(self, painter: QPainter, rect: QRectF) -> None:
        if self.at is None:
            return
        pal = self.canvas.palette_
        pen = QPen(pal.selection, 1.5, Qt.PenStyle.DashLine)
        pen.setCosmetic(True)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.setPen(pen)
        painter.setBrush(pal.rubber_band)
        painter.drawRoundedRect(QRectF(self.at.x(), self.at.y(), WIDTH, HEIGHT), RADIUS, RADIUS)
