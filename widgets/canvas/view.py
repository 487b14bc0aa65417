"""GraphCanvas: the node-graph view, a pure projection of a document it does not own.

The document tells it what exists (`add_node`, `add_edge`, `set_positions` …); the
user's gestures come back out as intent signals (`connect_requested`, `nodes_moved`,
`delete_requested` …) and nothing in the graph changes until the document says so.
Gestures live in `interactions.py`, palette drops in `drops.py`, keys in `keys.py`,
zoom and pan in `navigation.py`; this module routes events and keeps the projection.
"""

from __future__ import annotations

from collections.abc import Iterable
from contextlib import contextmanager

from PySide6.QtCore import QPoint, QPointF, QRectF, Qt, QTimer, Signal
from PySide6.QtGui import (
    QDragEnterEvent,
    QDragMoveEvent,
    QDropEvent,
    QKeyEvent,
    QMouseEvent,
    QPainter,
    QTransform,
)
from PySide6.QtWidgets import QGraphicsItem, QLabel

from .breadcrumb import Breadcrumb
from .drops import DropPreview, block_name
from .edge_item import EdgeItem
from .interactions import DragWire, Interaction, MoveBlocks, Pan, RubberBand
from .keys import handle_key
from .minimap import MiniMap
from .model import OUTPUT, EdgeKey, NodeView
from .navigation import FRAME_MARGIN, WORLD, NavigableView
from .node_item import LEGIBLE_ZOOM, NodeItem
from .scene import GraphScene
from .theme import DARK, LIGHT

PORT_PIXELS = 8.0          # how close (on screen) a press must be to grab a port
MINIMAP_MARGIN = 12


class GraphCanvas(NavigableView):
    """Node-graph editor view; every user edit leaves as a signal, never as a change."""

    block_dropped = Signal(str, float, float)      # type name, scene x, y of the drop point
    connect_requested = Signal(str, str, int)      # src id, dst id, dst port
    disconnect_requested = Signal(str, str, int)
    rewire_requested = Signal(str, str, int, str, int)  # src, old dst, old port, new dst, port
    nodes_moved = Signal(dict)                     # {id: (x, y)} live while dragging
    move_finished = Signal()
    delete_requested = Signal(list, list)          # node ids, edges as [src, dst, port]
    selection_changed = Signal(list)               # selected node ids
    node_double_clicked = Signal(str)
    copy_requested = Signal(list)
    paste_requested = Signal(float, float)
    duplicate_requested = Signal(list)
    crumb_clicked = Signal(int)                    # breadcrumb depth: 0 is the design
    up_requested = Signal()                        # Escape with nothing to cancel

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.scene_ = GraphScene(self)
        self.setScene(self.scene_)
        self.setSceneRect(WORLD)
        self.read_only = False
        self.minimap_enabled = True
        self._mode: Interaction | None = None
        self._space = False
        self._hover: tuple[NodeItem, int] | None = None
        self._last_pos: QPoint | None = None
        self._batch = 0
        self._emitted: list[str] = []
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setAcceptDrops(True)
        self.viewport().setMouseTracking(True)
        self.minimap = MiniMap(self)
        self.breadcrumb = Breadcrumb(self)
        self.breadcrumb.crumb_clicked.connect(self.crumb_clicked)
        self._layout_timer = QTimer(self, singleShot=True, interval=120)
        self._layout_timer.timeout.connect(self.minimap.refresh)
        self.scene_.selectionChanged.connect(self._on_scene_selection)
        self.centerOn(0, 0)

    # ---- projection API ----------------------------------------------------------------

    def add_node(self, view: NodeView) -> None:
        self.scene_.add_node(view)
        self.layout_changed()

    def update_node(self, view: NodeView) -> None:
        """New badges, ports or error; repaints only this block and its wires."""
        item = self.scene_.nodes.get(view.id)
        relayout = (item is None or tuple(view.pos) != (item.x(), item.y())
                    or item.view.error != view.error)
        self.scene_.update_node(view)
        if relayout:
            self.layout_changed()

    def remove_node(self, node_id: str) -> None:
        self._forget(node_id)
        with self._selection_batch():
            self.scene_.remove_node(node_id)
        self.layout_changed()

    def loading(self):
        """A context in which a whole design is added at once (see GraphScene.loading)."""
        return self.scene_.loading()

    def add_edge(self, src: str, dst: str, port: int, label: str = "") -> None:
        self.scene_.add_edge(src, dst, port, label)
        self.layout_changed()

    def remove_edge(self, src: str, dst: str, port: int) -> None:
        self.scene_.remove_edge((src, dst, port))
        self.layout_changed()

    def set_edge_label(self, src: str, dst: str, port: int, label: str) -> None:
        edge = self.scene_.edges.get((src, dst, port))
        if edge is not None:
            edge.set_label(label)

    def set_positions(self, positions: dict[str, tuple[float, float]]) -> None:
        if self.scene_.set_positions(positions):
            self.layout_changed()

    def clear(self) -> None:
        self.abort_interaction()
        self._hover = None
        with self._selection_batch():
            self.scene_.clear_graph()
        self.layout_changed()

    def select(self, ids: Iterable[str], emit: bool = True) -> None:
        """Select exactly these blocks (and no wires); one `selection_changed` at most."""
        wanted = set(ids)
        with self._selection_batch(emit):
            for item in self.scene_.selectedItems():
                if not (isinstance(item, NodeItem) and item.node_id in wanted):
                    item.setSelected(False)
            for node_id in wanted:
                item = self.scene_.nodes.get(node_id)
                if item is not None:
                    item.setSelected(True)

    def selected_nodes(self) -> list[str]:
        """Selected block ids, in the order the blocks were added."""
        return [n for n, item in self.scene_.nodes.items() if item.isSelected()]

    def selected_edges(self) -> list[EdgeKey]:
        return [k for k, e in self.scene_.edges.items() if e.isSelected()]

    def node_item(self, node_id: str) -> QGraphicsItem:
        return self.scene_.nodes[node_id]

    def port_scene_pos(self, node_id: str, port: int | None) -> QPointF:
        """Centre of an input port, or of the output port when `port` is None."""
        return self.scene_.nodes[node_id].port_scene_pos(OUTPUT if port is None else port)

    def fit_all(self) -> None:
        self.frame_rect(_union(self.scene_.nodes.values()))

    def show_design(self, readable: float = LEGIBLE_ZOOM, zoom: float = 0.85) -> None:
        """Fit the whole design when its block titles stay legible; otherwise show its
        top left (where the Input of a laid-out network is) at a readable zoom and
        leave the rest to scrolling and the minimap, the way a long network is read:
        from the input down, column after column."""
        rect = _union(self.scene_.nodes.values())
        self.fit_all()
        if rect.isEmpty() or self.current_scale() >= readable:
            return
        self.setTransform(QTransform.fromScale(zoom, zoom))
        vp = self.viewport().rect()
        half_w, half_h = vp.width() / (2 * zoom), vp.height() / (2 * zoom)
        x = (rect.center().x() if rect.width() + 2 * FRAME_MARGIN <= 2 * half_w
             else rect.left() - FRAME_MARGIN + half_w)
        self.centerOn(QPointF(x, rect.top() - FRAME_MARGIN + half_h))
        self._changed()

    def reveal(self, node_id: str, margin: int = 40) -> None:
        """Scroll, without zooming, just enough that the block is in view with
        ``margin`` pixels to spare; nothing moves when it already is."""
        item = self.scene_.nodes.get(node_id)
        if item is not None:
            self.ensureVisible(item.mapRectToScene(item.card_rect()), margin, margin)

    def frame_selection(self) -> None:
        """Frame the selected blocks, or all of them when none is selected."""
        chosen = [n for n in self.scene_.nodes.values() if n.isSelected()]
        self.frame_rect(_union(chosen or self.scene_.nodes.values()))

    def set_read_only(self, flag: bool, reason: str = "") -> None:
        """While training: selection still works; no moves, wires, deletes or drops.
        ``reason`` is shown in a banner across the top, so a locked canvas never looks
        like a broken one."""
        self.read_only = bool(flag)
        if flag:
            self.cancel_interaction()
            self._set_hover(None)
        self.setAcceptDrops(not flag)
        self.set_banner(reason if flag else "")

    def set_banner(self, text: str) -> None:
        if not hasattr(self, "banner"):
            self.banner = QLabel(self)
            self.banner.setObjectName("canvasBanner")
            self.banner.setWordWrap(True)
            self.banner.setAlignment(Qt.AlignmentFlag.AlignCenter)
            self.banner.setStyleSheet("#canvasBanner { background: rgba(255, 243, 205, 235); "
                                      "color: #5c4400; border: 1px solid #e0c060; "
                                      "border-radius: 4px; padding: 4px 10px; }")
        self.banner.setText(text)
        self.banner.setVisible(bool(text))
        self.place_banner()

    def set_breadcrumb(self, labels: list[str], tips: list[str] | None = None,
                       note: str = "") -> None:
        """The path of the block body shown ("design ▸ Stage ▸ ConvReLU"); fewer than
        two labels (the design itself) hide it."""
        self.breadcrumb.set_path(labels, tips or [], note)
        self.place_banner()

    def set_empty_hint(self, text: str) -> None:
        """What to do on an empty canvas, in its middle; "" hides it."""
        if not hasattr(self, "empty_hint"):
            self.empty_hint = QLabel(self.viewport())
            self.empty_hint.setObjectName("canvasEmptyHint")
            self.empty_hint.setWordWrap(True)
            self.empty_hint.setAlignment(Qt.AlignmentFlag.AlignCenter)
            self.empty_hint.setStyleSheet("#canvasEmptyHint { color: #8a8f98; "
                                          "font-size: 15px; background: transparent; }")
            self.empty_hint.setAttribute(Qt.WidgetAttribute.WA_TransparentForMouseEvents)
        self.empty_hint.setText(text)
        self.empty_hint.setVisible(bool(text))
        self.place_banner()

    def place_banner(self) -> None:
        hint = getattr(self, "empty_hint", None)
        if hint is not None and not hint.isHidden():
            vp = self.viewport().rect()
            hint.setFixedWidth(min(max(vp.width() - 40, 100), 520))
            hint.adjustSize()
            hint.move((vp.width() - hint.width()) // 2, (vp.height() - hint.height()) // 2)
        vp = self.viewport().geometry()
        crumbs = getattr(self, "breadcrumb", None)
        below = 8
        if crumbs is not None and not crumbs.isHidden():
            crumbs.setMaximumWidth(max(vp.width(), 100))
            crumbs.adjustSize()
            crumbs.move(vp.left(), vp.top())
            crumbs.raise_()
            below += crumbs.height()
        if not hasattr(self, "banner") or self.banner.isHidden():
            return
        width = min(vp.width() - 20, 560)
        self.banner.setFixedWidth(max(width, 100))
        self.banner.adjustSize()
        self.banner.move(vp.left() + (vp.width() - self.banner.width()) // 2, vp.top() + below)
        self.banner.raise_()

    def set_dark(self, dark: bool) -> None:
        self.palette_ = DARK if dark else LIGHT
        self.scene_.set_palette(self.palette_)
        self.resetCachedContent()
        self.viewport().update()
        self.minimap.refresh()

    # ---- used by interactions and keys -------------------------------------------------

    def port_at(self, scene_pos: QPointF) -> tuple[NodeItem, int] | None:
        """The port under the cursor, within PORT_PIXELS on screen (6 scene units at least)."""
        return self.scene_.port_at(scene_pos,
                                   max(PORT_PIXELS / max(self.current_scale(), 1e-6), 6.0))

    def layout_changed(self) -> None:
        """Blocks or wires changed: refresh the minimap soon, at most once per interval
        however many changes arrive (a 1,000-block load, a long drag)."""
        if not self._layout_timer.isActive():
            self._layout_timer.start()

    def view_changed(self) -> None:
        if hasattr(self, "minimap"):
            self.place_minimap()
            self.minimap.update_visibility()
        self.place_banner()

    def place_minimap(self) -> None:
        vp = self.viewport().geometry()
        self.minimap.move(vp.right() - self.minimap.width() - MINIMAP_MARGIN,
                          vp.bottom() - self.minimap.height() - MINIMAP_MARGIN)

    def has_interaction(self) -> bool:
        return self._mode is not None

    def cancel_interaction(self) -> None:
        if self._mode is not None:
            mode, self._mode = self._mode, None
            mode.cancel()

    def set_space_held(self, held: bool) -> None:
        self._space = held
        if not isinstance(self._mode, Pan):
            self.restore_cursor()

    def restore_cursor(self) -> None:
        self.viewport().setCursor(Qt.CursorShape.OpenHandCursor if self._space
                                  else Qt.CursorShape.ArrowCursor)

    def paste_position(self) -> QPointF:
        """Where Ctrl+V pastes: the cursor when it is over the canvas, else the centre."""
        if self._last_pos is not None and self.viewport().rect().contains(self._last_pos):
            return self.scene_pos(QPointF(self._last_pos))
        return self.visible_scene_rect().center()

    def emit_selection(self) -> None:
        ids = self.selected_nodes()
        if ids != self._emitted:
            self._emitted = ids
            self.selection_changed.emit(ids)

    @contextmanager
    def _selection_batch(self, emit: bool = True):
        """Many setSelected calls, at most one `selection_changed` afterwards."""
        self._batch += 1
        try:
            yield
        finally:
            self._batch -= 1
            if self._batch == 0 and emit:
                self.emit_selection()

    def _on_scene_selection(self) -> None:
        if self._batch == 0 and not isinstance(self._mode, RubberBand):
            self.emit_selection()

    def _forget(self, node_id: str) -> None:
        """A block is leaving: drop references to it; end a gesture that needs it."""
        item = self.scene_.nodes.get(node_id)
        if self._hover is not None and self._hover[0] is item:
            self._hover = None
        if self._mode is not None and item is not None and not self._mode.forget(item):
            self.abort_interaction()

    def abort_interaction(self) -> None:
        if self._mode is not None:
            mode, self._mode = self._mode, None
            mode.abort()

    def _set_hover(self, hit: tuple[NodeItem, int] | None) -> None:
        if hit == self._hover:
            return
        if self._hover is not None:
            self._hover[0].set_hover_port(None)
        self._hover = hit
        if hit is not None:
            hit[0].set_hover_port(hit[1])
        if not self._space:
            self.viewport().setCursor(Qt.CursorShape.CrossCursor if hit is not None
                                      else Qt.CursorShape.ArrowCursor)

    # ---- mouse -------------------------------------------------------------------------

    def mousePressEvent(self, event: QMouseEvent) -> None:  # noqa: N802 (Qt override)
        view_pos = event.position().toPoint()
        self._last_pos = view_pos
        if self._mode is not None:       # another button during a gesture: ignore it
            event.accept()
            return
        button = event.button()
        if button == Qt.MouseButton.MiddleButton or (
                button == Qt.MouseButton.LeftButton and self._space):
            self._mode = Pan(self, view_pos)
        elif button == Qt.MouseButton.LeftButton:
            self._mode = self._press_left(event, view_pos, self.scene_pos(event.position()))
        else:
            super().mousePressEvent(event)
            return
        event.accept()

    def _press_left(self, event: QMouseEvent, view_pos: QPoint,
                    scene_pos: QPointF) -> Interaction | None:
        toggle = bool(event.modifiers() & (Qt.KeyboardModifier.ControlModifier
                                           | Qt.KeyboardModifier.ShiftModifier))
        hit = None if self.read_only or toggle else self.port_at(scene_pos)
        if hit is not None:
            self._set_hover(None)
            return DragWire(self, *hit)
        item = self.scene_.item_at(scene_pos)
        if toggle and item is not None:
            item.setSelected(not item.isSelected())
            return None
        if isinstance(item, NodeItem):
            narrow = item.isSelected() and len(self.selected_nodes()) > 1
            if not item.isSelected():
                self.select([item.node_id])
            return MoveBlocks(self, view_pos, scene_pos, item, narrow)
        if isinstance(item, EdgeItem):
            with self._selection_batch():
                self.scene_.clearSelection()
                item.setSelected(True)
            return None
        return RubberBand(self, scene_pos, additive=toggle)

    def mouseMoveEvent(self, event: QMouseEvent) -> None:  # noqa: N802 (Qt override)
        view_pos = event.position().toPoint()
        self._last_pos = view_pos
        if self._mode is not None:
            self._mode.move(view_pos, self.scene_pos(event.position()))
            event.accept()
            return
        if not self.read_only and not self._space:
            self._set_hover(self.port_at(self.scene_pos(event.position())))
        super().mouseMoveEvent(event)    # wire hover and tooltips

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:  # noqa: N802 (Qt override)
        if self._mode is None:
            super().mouseReleaseEvent(event)
            event.accept()   # the press was ours (a click that needed no gesture)
            return
        mode, self._mode = self._mode, None
        mode.release(self.scene_pos(event.position()))
        event.accept()

    def mouseDoubleClickEvent(self, event: QMouseEvent) -> None:  # noqa: N802 (Qt override)
        item = self.scene_.item_at(self.scene_pos(event.position()))
        if event.button() == Qt.MouseButton.LeftButton and isinstance(item, NodeItem):
            self.node_double_clicked.emit(item.node_id)
            event.accept()
            return
        self.mousePressEvent(event)

    def leaveEvent(self, event) -> None:  # noqa: N802 (Qt override)
        self._set_hover(None)
        super().leaveEvent(event)

    # ---- keys --------------------------------------------------------------------------

    def keyPressEvent(self, event: QKeyEvent) -> None:  # noqa: N802 (Qt override)
        if handle_key(self, event):
            event.accept()
        else:
            super().keyPressEvent(event)

    def keyReleaseEvent(self, event: QKeyEvent) -> None:  # noqa: N802 (Qt override)
        if event.key() == Qt.Key.Key_Space and not event.isAutoRepeat():
            self.set_space_held(False)
            event.accept()
            return
        super().keyReleaseEvent(event)

    def focusOutEvent(self, event) -> None:  # noqa: N802 (Qt override)
        self.set_space_held(False)
        super().focusOutEvent(event)

    # ---- drops from the palette --------------------------------------------------------

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:  # noqa: N802 (Qt override)
        self.dragMoveEvent(event)

    def dragMoveEvent(self, event: QDragMoveEvent) -> None:  # noqa: N802 (Qt override)
        busy = self._mode is not None and not isinstance(self._mode, DropPreview)
        if self.read_only or busy or block_name(event.mimeData()) is None:
            event.ignore()
            return
        if self._mode is None:
            self._mode = DropPreview(self)
        event.acceptProposedAction()
        self._mode.move(event.position().toPoint(), self.scene_pos(event.position()))

    def dragLeaveEvent(self, event) -> None:  # noqa: N802 (Qt override)
        if isinstance(self._mode, DropPreview):
            self.cancel_interaction()
        event.accept()

    def dropEvent(self, event: QDropEvent) -> None:  # noqa: N802 (Qt override)
        if isinstance(self._mode, DropPreview):
            self.cancel_interaction()
        name = block_name(event.mimeData())
        if self.read_only or name is None:
            event.ignore()
            return
        event.acceptProposedAction()
        p = self.scene_pos(event.position())
        self.block_dropped.emit(name, p.x(), p.y())

    def drawForeground(self, painter: QPainter, rect: QRectF) -> None:  # noqa: N802
        if self._mode is not None:
            self._mode.draw_foreground(painter, rect)

def _union(items: Iterable[NodeItem]) -> QRectF:
    rect = QRectF()
    for item in items:
        rect = rect.united(item.mapRectToScene(item.card_rect()))
    return rect
