"""A small overview in the corner: every block as a coloured dot-rectangle, the wires as
faint lines, and the visible part of the scene as a frame; click or drag to go there.

It is only shown when the graph does not fit the view, and it draws the blocks into a
pixmap once per layout change (debounced by the canvas), so scrolling repaints just
the frame.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import QPointF, QRectF, QSize, Qt
from PySide6.QtGui import QColor, QMouseEvent, QPainter, QPaintEvent, QPen, QPixmap
from PySide6.QtWidgets import QWidget

from .theme import category_colour

if TYPE_CHECKING:
    from .view import GraphCanvas

MAX_SIZE = QSize(220, 150)
PAD = 8.0


class MiniMap(QWidget):
    """Overview of the canvas' scene; a child of the canvas, floating over its corner."""

    def __init__(self, canvas: GraphCanvas) -> None:
        super().__init__(canvas)
        self.canvas = canvas
        self.content = QRectF()          # scene rect the minimap shows
        self._pixmap: QPixmap | None = None
        self.setCursor(Qt.CursorShape.PointingHandCursor)
        self.setToolTip("Overview: click or drag to move the view")
        self.hide()

    # ---- geometry ----------------------------------------------------------------------

    def _scale(self) -> float:
        if self.content.isEmpty():
            return 1.0
        return min((self.width() - 2 * PAD) / self.content.width(),
                   (self.height() - 2 * PAD) / self.content.height())

    def scene_to_map(self, p: QPointF) -> QPointF:
        s = self._scale()
        off = self._offset()
        return QPointF((p.x() - self.content.left()) * s + off.x(),
                       (p.y() - self.content.top()) * s + off.y())

    def map_to_scene(self, p: QPointF) -> QPointF:
        s = self._scale()
        off = self._offset()
        return QPointF((p.x() - off.x()) / s + self.content.left(),
                       (p.y() - off.y()) / s + self.content.top())

    def _offset(self) -> QPointF:
        s = self._scale()
        return QPointF((self.width() - self.content.width() * s) / 2,
                       (self.height() - self.content.height() * s) / 2)

    # ---- refresh -----------------------------------------------------------------------

    def refresh(self) -> None:
        """Re-read the blocks (after the layout changed) and decide whether to show."""
        nodes = self.canvas.scene_.nodes
        content = QRectF()
        for item in nodes.values():
            content = content.united(item.sceneBoundingRect())
        self.content = content
        self._pixmap = None
        self.update_visibility()

    def update_visibility(self) -> None:
        visible = self.canvas.visible_scene_rect()
        show = (not self.content.isEmpty() and not visible.contains(self.content)
                and self.canvas.minimap_enabled)
        if show:
            ratio = self.content.width() / max(self.content.height(), 1.0)
            w = MAX_SIZE.width()
            h = min(MAX_SIZE.height(), max(60.0, w / max(ratio, 1e-3)))
            if h == MAX_SIZE.height():
                w = max(80.0, min(MAX_SIZE.width(), h * ratio))
            size = QSize(int(w), int(h))
            if size != self.size():
                self.resize(size)
                self._pixmap = None
            self.canvas.place_minimap()
        self.setVisible(show)
        if show:
            self.raise_()
            self.update()

    def _render(self) -> QPixmap:
        ratio = self.devicePixelRatioF()
        pixmap = QPixmap(self.size() * ratio)
        pixmap.setDevicePixelRatio(ratio)
        pixmap.fill(Qt.GlobalColor.transparent)
        painter = QPainter(pixmap)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        pal = self.canvas.palette_
        wire = QColor(pal.wire)
        wire.setAlpha(110)
        painter.setPen(QPen(wire, 1.0))
        scene = self.canvas.scene_
        for edge in scene.edges.values():
            painter.drawLine(self.scene_to_map(edge.src.sceneBoundingRect().center()),
                             self.scene_to_map(edge.dst.sceneBoundingRect().center()))
        painter.setPen(Qt.PenStyle.NoPen)
        for item in scene.nodes.values():
            r = item.mapRectToScene(item.card_rect())
            a, b = self.scene_to_map(r.topLeft()), self.scene_to_map(r.bottomRight())
            rect = QRectF(a, b)
            if rect.width() < 2:
                rect.setWidth(2)
            if rect.height() < 1.5:
                rect.setHeight(1.5)
            colour = pal.error if item.view.error else category_colour(item.view.category, pal)
            painter.fillRect(rect, colour)
        painter.end()
        return pixmap

    # ---- Qt ----------------------------------------------------------------------------

    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802 (Qt override)
        pal = self.canvas.palette_
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.setPen(QPen(pal.outline, 1.0))
        painter.setBrush(pal.minimap_bg)
        painter.drawRoundedRect(QRectF(self.rect()).adjusted(0.5, 0.5, -0.5, -0.5), 6, 6)
        if self.content.isEmpty():
            return
        if self._pixmap is None or self._pixmap.deviceIndependentSize().toSize() != self.size():
            self._pixmap = self._render()
        painter.drawPixmap(0, 0, self._pixmap)
        visible = self.canvas.visible_scene_rect()
        frame = QRectF(self.scene_to_map(visible.topLeft()),
                       self.scene_to_map(visible.bottomRight()))
        frame = frame.intersected(QRectF(self.rect()).adjusted(1, 1, -1, -1))
        fill = QColor(pal.minimap_view)
        fill.setAlpha(30)
        painter.setBrush(fill)
        painter.setPen(QPen(pal.minimap_view, 1.5))
        painter.drawRect(frame)

    def mousePressEvent(self, event: QMouseEvent) -> None:  # noqa: N802 (Qt override)
        if event.button() == Qt.MouseButton.LeftButton:
            self.canvas.centerOn(self.map_to_scene(event.position()))
            event.accept()

    def mouseMoveEvent(self, event: QMouseEvent) -> None:  # noqa: N802 (Qt override)
        if event.buttons() & Qt.MouseButton.LeftButton:
            self.canvas.centerOn(self.map_to_scene(event.position()))
            event.accept()
