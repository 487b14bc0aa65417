"""Mouse modes of the canvas, one small object each (as in Orange's interactions.py):
panning, moving blocks, rubber-band selection and dragging a wire.

The view creates a mode on press, forwards moves and the release to it, and drops
it afterwards; a mode only draws feedback and emits the canvas' intent signals.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import QPoint, QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QPainter, QPen
from PySide6.QtWidgets import QGraphicsItem, QGraphicsRectItem, QGraphicsScene

from .edge_item import EdgeItem, WireItem
from .model import OUTPUT
from .node_item import NodeItem

if TYPE_CHECKING:
    from .view import GraphCanvas

SNAP_PIXELS = 20.0     # a dragged wire snaps to a port this close on screen
BIG_MOVE = 100         # dragging more blocks than this suspends the scene's BSP index


class Interaction:
    """Base mode: ignores everything."""

    def __init__(self, canvas: GraphCanvas) -> None:
        self.canvas = canvas

    def move(self, view_pos: QPoint, scene_pos: QPointF) -> None:
        pass

    def release(self, scene_pos: QPointF) -> None:
        pass

    def cancel(self) -> None:
        """The user gave up (Escape, read-only): undo any feedback."""

    def abort(self) -> None:
        """The document changed under the gesture (reset): stop without emitting."""
        self.cancel()

    def forget(self, node: NodeItem) -> bool:
        """`node` is leaving the scene; False when the gesture cannot go on without it."""
        return True

    def draw_foreground(self, painter: QPainter, rect: QRectF) -> None:
        pass


class Pan(Interaction):
    """Middle-button or Space+left drag: the scene follows the hand."""

    def __init__(self, canvas: GraphCanvas, view_pos: QPoint) -> None:
        super().__init__(canvas)
        self.last = view_pos
        canvas.viewport().setCursor(Qt.CursorShape.ClosedHandCursor)

    def move(self, view_pos: QPoint, scene_pos: QPointF) -> None:
        delta = view_pos - self.last
        self.last = view_pos
        self.canvas.scroll_by(-delta.x(), -delta.y())

    def release(self, scene_pos: QPointF) -> None:
        self.cancel()

    def cancel(self) -> None:
        self.canvas.restore_cursor()


class MoveBlocks(Interaction):
    """Drag the selected blocks; positions go out live, `move_finished` on release.

    A press on a block that is already part of a multi-selection keeps the selection
    (so the group can be dragged) and narrows it to that block only if no drag follows.
    """

    def __init__(self, canvas: GraphCanvas, view_pos: QPoint, scene_pos: QPointF,
                 pressed: NodeItem, narrow_on_click: bool) -> None:
        super().__init__(canvas)
        self.press_view, self.press_scene = view_pos, scene_pos
        self.pressed, self.narrow_on_click = pressed, narrow_on_click
        self.items = [n for n in canvas.scene_.nodes.values() if n.isSelected()]
        self.start = {n.node_id: n.pos() for n in self.items}
        self.dragging = False

    def move(self, view_pos: QPoint, scene_pos: QPointF) -> None:
        if not self.dragging:
            if (view_pos - self.press_view).manhattanLength() < 3 or self.canvas.read_only:
                return
            self.dragging = True
            if len(self.items) > BIG_MOVE:   # Qt's advice for many moving items
                self.canvas.scene_.setItemIndexMethod(QGraphicsScene.ItemIndexMethod.NoIndex)
        delta = scene_pos - self.press_scene
        positions = {}
        for item in self.items:
            p = self.start[item.node_id] + delta
            positions[item.node_id] = (p.x(), p.y())
        self.canvas.scene_.set_positions(positions)
        self.canvas.nodes_moved.emit(positions)

    def release(self, scene_pos: QPointF) -> None:
        if self.dragging:
            self._finish()
        elif self.narrow_on_click:
            self.canvas.select([self.pressed.node_id])

    def cancel(self) -> None:
        if self.dragging:   # Escape puts the blocks back where they were
            back = {k: (p.x(), p.y()) for k, p in self.start.items()}
            self.canvas.scene_.set_positions(back)
            self.canvas.nodes_moved.emit(back)
            self._finish()

    def abort(self) -> None:
        self._finish(emit=False)

    def forget(self, node: NodeItem) -> bool:
        if node in self.items:
            self.items.remove(node)
            self.start.pop(node.node_id, None)
        return True

    def _finish(self, emit: bool = True) -> None:
        was_dragging, self.dragging = self.dragging, False
        scene = self.canvas.scene_
        if scene.itemIndexMethod() != QGraphicsScene.ItemIndexMethod.BspTreeIndex:
            scene.setItemIndexMethod(QGraphicsScene.ItemIndexMethod.BspTreeIndex)
        self.canvas.layout_changed()   # the minimap catches up once, not per move
        if emit and was_dragging:
            self.canvas.move_finished.emit()


class RubberBand(Interaction):
    """Drag on empty space: blocks touched by the rectangle are selected, live."""

    def __init__(self, canvas: GraphCanvas, scene_pos: QPointF, additive: bool) -> None:
        super().__init__(canvas)
        self.origin = scene_pos
        self.before = set(canvas.selected_nodes()) if additive else set()
        self.rect_item: QGraphicsRectItem | None = None
        if not additive:
            canvas.select([])

    def move(self, view_pos: QPoint, scene_pos: QPointF) -> None:
        rect = QRectF(self.origin, scene_pos).normalized()
        if self.rect_item is None:
            pal = self.canvas.palette_
            self.rect_item = QGraphicsRectItem()
            pen = QPen(pal.selection, 1.0)
            pen.setCosmetic(True)
            self.rect_item.setPen(pen)
            self.rect_item.setBrush(pal.rubber_band)
            self.rect_item.setZValue(10.0)
            self.canvas.scene_.addItem(self.rect_item)
        self.rect_item.setRect(rect)
        hit = {i.node_id for i in self.canvas.scene_.items(rect)   # cards, not port discs
               if isinstance(i, NodeItem) and i.mapRectToScene(i.card_rect()).intersects(rect)}
        self.canvas.select(sorted(self.before | hit), emit=False)

    def release(self, scene_pos: QPointF) -> None:
        self.cancel()
        self.canvas.emit_selection()

    def cancel(self) -> None:
        if self.rect_item is not None:
            self.canvas.scene_.removeItem(self.rect_item)
            self.rect_item = None


class DragWire(Interaction):
    """Drag a wire from a port.

    From an output: lands on a free input of another block → connect.
    From a connected input: the wire is picked up at its end; dropped on another free
    input → disconnect + connect, dropped on empty space → disconnect.
    From a free input: lands on another block's output → connect.
    Compatible ports are ringed; the wire snaps to the nearest within SNAP_PIXELS, or to
    the nearest compatible port of the block under the cursor.
    """

    def __init__(self, canvas: GraphCanvas, node: NodeItem, port: int) -> None:
        super().__init__(canvas)
        self.detached: EdgeItem | None = None
        if port == OUTPUT:
            self.anchor, self.anchor_port, self.to_inputs = node, OUTPUT, True
        else:
            self.detached = canvas.scene_.edge_into(node.node_id, port)
            if self.detached is not None:
                self.anchor, self.anchor_port, self.to_inputs = self.detached.src, OUTPUT, True
                self.detached.setVisible(False)
            else:
                self.anchor, self.anchor_port, self.to_inputs = node, port, False
        self.candidates = self._candidates()
        self.target: tuple[NodeItem, int] | None = None
        self.wire = WireItem(canvas.palette_)
        self.wire.setZValue(5.0)
        canvas.scene_.addItem(self.wire)
        start = self.anchor.port_scene_pos(self.anchor_port)
        self._route(start if self.detached is None else node.port_scene_pos(port))
        canvas.viewport().update()

    def _candidates(self) -> list[tuple[NodeItem, int]]:
        out = []
        for item in self.canvas.scene_.nodes.values():
            if item is self.anchor:
                continue
            if self.to_inputs:
                free = item.free_inputs()
                if self.detached is not None and item is self.detached.dst:
                    free.append(self.detached.port)
                out.extend((item, p) for p in free)
            elif item.view.has_output:
                out.append((item, OUTPUT))
        return out

    def _route(self, cursor: QPointF) -> None:
        here = self.anchor.port_scene_pos(self.anchor_port)
        if self.anchor_port == OUTPUT:
            self.wire.set_ends(here, cursor)
        else:
            self.wire.set_ends(cursor, here)

    def _snap(self, scene_pos: QPointF) -> tuple[NodeItem, int] | None:
        radius = SNAP_PIXELS / max(self.canvas.current_scale(), 1e-6)
        radius = max(radius, SNAP_PIXELS)
        best, best_d = None, radius * radius
        for item, port in self.candidates:
            d = item.port_scene_pos(port) - scene_pos
            dist = d.x() * d.x() + d.y() * d.y()
            if dist <= best_d:
                best, best_d = (item, port), dist
        if best is not None:
            return best
        under = self.canvas.scene_.node_at(scene_pos)
        if under is not None:
            options = [(i, p) for i, p in self.candidates if i is under]
            if options:
                return min(options, key=lambda c: _dist2(c[0].port_scene_pos(c[1]), scene_pos))
        return None

    def move(self, view_pos: QPoint, scene_pos: QPointF) -> None:
        target = self._snap(scene_pos)
        if target != self.target:
            self._update_ring(self.target)
            self._update_ring(target)
            self.target = target
        self._route(target[0].port_scene_pos(target[1]) if target else scene_pos)

    def release(self, scene_pos: QPointF) -> None:
        target = self._snap(scene_pos)
        self.cancel()
        canvas = self.canvas
        if self.detached is not None:
            old = self.detached.key
            if target is not None and (target[0].node_id, target[1]) == old[1:]:
                return   # dropped back where it was
            if target is None:
                canvas.disconnect_requested.emit(*old)
            else:  # one intent, so that it can be one undo step
                canvas.rewire_requested.emit(*old, target[0].node_id, target[1])
        elif target is not None:
            if self.to_inputs:
                canvas.connect_requested.emit(self.anchor.node_id, target[0].node_id, target[1])
            else:
                canvas.connect_requested.emit(target[0].node_id, self.anchor.node_id,
                                              self.anchor_port)

    def cancel(self) -> None:
        if self.wire.scene() is not None:
            self.canvas.scene_.removeItem(self.wire)
        if self.detached is not None:
            self.detached.setVisible(True)
        self.candidates = []
        self.canvas.viewport().update()

    def forget(self, node: NodeItem) -> bool:
        ends = {self.anchor} | ({self.detached.src, self.detached.dst} if self.detached else set())
        if node in ends:
            return False
        self.candidates = [c for c in self.candidates if c[0] is not node]
        if self.target is not None and self.target[0] is node:
            self.target = None
        return True

    def _update_ring(self, target: tuple[NodeItem, int] | None) -> None:
        if target is not None:
            c = target[0].port_scene_pos(target[1])
            self.canvas.scene_.update(QRectF(c.x() - 16, c.y() - 16, 32, 32))

    def draw_foreground(self, painter: QPainter, rect: QRectF) -> None:
        """Rings on every compatible port in view; a filled one on the snap target."""
        colour: QColor = self.canvas.palette_.candidate
        pen = QPen(colour, 2.0)
        pen.setCosmetic(True)
        painter.save()
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.setPen(pen)
        painter.setBrush(Qt.BrushStyle.NoBrush)
        grown = rect.adjusted(-14, -14, 14, 14)
        for item, port in self.candidates:
            c = item.port_scene_pos(port)
            if grown.contains(c):
                painter.drawEllipse(c, 9.5, 9.5)
        if self.target is not None:
            c = self.target[0].port_scene_pos(self.target[1])
            fill = QColor(colour)
            fill.setAlpha(90)
            painter.setBrush(fill)
            painter.drawEllipse(c, 12.0, 12.0)
        painter.restore()


def _dist2(a: QPointF, b: QPointF) -> float:
    d = a - b
    return d.x() * d.x() + d.y() * d.y()


def is_canvas_item(item: QGraphicsItem) -> bool:
    return isinstance(item, NodeItem | EdgeItem)
