"""The navigable base of the canvas: a free-scrolling world, zoom about a point with
limits, framing a rectangle, panning by pixels and the dot-grid background.

It knows nothing of blocks or wires, which keeps the graph view about the graph.
"""

from __future__ import annotations

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QPainter, QTransform, QWheelEvent
from PySide6.QtWidgets import QGraphicsView

from .grid import draw_dot_grid
from .theme import LIGHT, CanvasPalette

MIN_ZOOM, MAX_ZOOM, FIT_MAX_ZOOM = 0.1, 4.0, 1.25
WHEEL_BASE = 1.0015        # one notch (120) zooms by ~1.2×
FRAME_MARGIN = 40.0
# The view scrolls over a huge rectangle so zooming can keep any point under the
# cursor; the scene's own rect (and so its BSP index) stays as tight as the items.
WORLD = QRectF(-1e6, -1e6, 2e6, 2e6)


class NavigableView(QGraphicsView):
    """Zoom, pan, frame; calls `view_changed()` after each so overlays can follow."""

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.palette_: CanvasPalette = LIGHT
        self.setRenderHints(QPainter.RenderHint.Antialiasing
                            | QPainter.RenderHint.TextAntialiasing)
        self.setViewportUpdateMode(QGraphicsView.ViewportUpdateMode.MinimalViewportUpdate)
        self.setCacheMode(QGraphicsView.CacheModeFlag.CacheBackground)
        self.setTransformationAnchor(QGraphicsView.ViewportAnchor.NoAnchor)
        self.setResizeAnchor(QGraphicsView.ViewportAnchor.AnchorViewCenter)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setFrameShape(QGraphicsView.Shape.NoFrame)

    def view_changed(self) -> None:
        """Hook: the visible part of the scene changed (zoom, scroll, resize)."""

    # ---- coordinates -------------------------------------------------------------------

    def current_scale(self) -> float:
        return self.transform().m11()

    def visible_scene_rect(self) -> QRectF:
        return self.mapToScene(self.viewport().rect()).boundingRect()

    def scene_pos(self, view_pos: QPointF) -> QPointF:
        """Exact (sub-pixel) scene point of a viewport point; mapToScene rounds to ints."""
        return self.viewportTransform().inverted()[0].map(QPointF(view_pos))

    # ---- moving the view ---------------------------------------------------------------

    def scroll_by(self, dx: float, dy: float) -> None:
        h, v = self.horizontalScrollBar(), self.verticalScrollBar()
        h.setValue(h.value() + round(dx))
        v.setValue(v.value() + round(dy))

    def zoom_by(self, factor: float, anchor_scene_pos: QPointF | None = None) -> None:
        """Zoom, keeping `anchor_scene_pos` (default: the view centre) where it is on screen."""
        old = self.current_scale()
        new = min(MAX_ZOOM, max(MIN_ZOOM, old * factor))
        if new == old:
            return
        anchor = QPointF(anchor_scene_pos if anchor_scene_pos is not None
                         else self.visible_scene_rect().center())
        before = self.viewportTransform().map(anchor)
        self.setTransform(QTransform.fromScale(new, new))
        after = self.viewportTransform().map(anchor)
        self.scroll_by(after.x() - before.x(), after.y() - before.y())
        self._changed()

    def frame_rect(self, rect: QRectF) -> None:
        """Show `rect` whole and centred, zoomed no further in than FIT_MAX_ZOOM."""
        if rect.isEmpty():
            return
        rect = rect.adjusted(-FRAME_MARGIN, -FRAME_MARGIN, FRAME_MARGIN, FRAME_MARGIN)
        vp = self.viewport().rect()
        scale = min(vp.width() / rect.width(), vp.height() / rect.height())
        scale = min(FIT_MAX_ZOOM, max(MIN_ZOOM, scale))
        self.setTransform(QTransform.fromScale(scale, scale))
        self.centerOn(rect.center())
        self._changed()

    def _changed(self) -> None:
        self.resetCachedContent()   # the grid spacing depends on the zoom
        self.view_changed()

    # ---- Qt ----------------------------------------------------------------------------

    def wheelEvent(self, event: QWheelEvent) -> None:  # noqa: N802 (Qt override)
        delta = event.angleDelta().y() or event.angleDelta().x()
        if not delta:
            event.ignore()
            return
        self.zoom_by(WHEEL_BASE ** delta, self.scene_pos(event.position()))
        event.accept()

    def drawBackground(self, painter: QPainter, rect: QRectF) -> None:  # noqa: N802
        draw_dot_grid(painter, rect, self.current_scale(), self.palette_)

    def scrollContentsBy(self, dx: int, dy: int) -> None:  # noqa: N802 (Qt override)
        super().scrollContentsBy(dx, dy)
        self.view_changed()

    def resizeEvent(self, event) -> None:  # noqa: N802 (Qt override)
        super().resizeEvent(event)
        self.view_changed()
