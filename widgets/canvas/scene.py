"""The scene: owns the items for one projected document and keeps wires attached.

It is told what exists (nodes, edges, positions) and builds or drops items; it holds
no graph logic, so projecting a document twice gives the same picture.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtWidgets import QGraphicsScene

from .edge_item import EdgeItem, WireRouter, card_area
from .model import EdgeKey, NodeView
from .node_item import NodeItem
from .theme import LIGHT, CanvasPalette

INDEX_PAD = 4000.0   # the index's rect reaches this far past the blocks, grown in steps
HOME = QRectF(-INDEX_PAD, -INDEX_PAD, 2 * INDEX_PAD, 2 * INDEX_PAD)


class GraphScene(QGraphicsScene):
    """Items by id: `nodes[id]` and `edges[(src, dst, port)]`."""

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self._bulk: dict[NodeItem, QRectF] = {}   # moved while unindexed: where they were
        self._straightened = False                 # … and wires went plain meanwhile
        self._loading = False                      # inside loading(): wires route at its end
        self.setItemIndexMethod(QGraphicsScene.ItemIndexMethod.BspTreeIndex)
        self.setSceneRect(HOME)
        self.palette_: CanvasPalette = LIGHT
        self.nodes: dict[str, NodeItem] = {}
        self.edges: dict[EdgeKey, EdgeItem] = {}
        self.router = WireRouter(self)

    # ---- nodes -------------------------------------------------------------------------

    def add_node(self, view: NodeView) -> NodeItem:
        """A block; adding an id twice updates it instead, so a replayed signal is harmless."""
        if view.id in self.nodes:
            return self.update_node(view)
        item = NodeItem(view, self.palette_)
        self.nodes[view.id] = item
        self.addItem(item)
        self._cover(_card(item))
        if not self._loading:
            self.reroute_near([_card(item)])
        return item

    @contextlib.contextmanager
    def loading(self) -> Iterator[None]:
        """Add a whole design at once: items go in unindexed and wires plain, then the
        index is built once and every wire routed once, in a stable order. Routed one
        by one as they came, each wire's queries met an index still taking in the
        items added since the last query: seconds for a thousand blocks."""
        self.setItemIndexMethod(QGraphicsScene.ItemIndexMethod.NoIndex)
        self._loading = True
        try:
            yield
        finally:
            self._loading = False
            self.setItemIndexMethod(QGraphicsScene.ItemIndexMethod.BspTreeIndex)
            for edge in sorted(self.edges.values(), key=lambda e: e.key):
                edge.refresh()

    def update_node(self, view: NodeView) -> NodeItem:
        item = self.nodes.get(view.id)
        if item is None:
            return self.add_node(view)
        before = _card(item)
        item.set_view(view)
        after = _card(item)
        if after != before:     # moved or resized: wires around it may route anew
            self._cover(after)
            self.reroute_near([before, after])
        return item

    def remove_node(self, node_id: str) -> None:
        item = self.nodes.pop(node_id, None)
        if item is None:
            return
        for edge in list(item.edges):
            self.remove_edge(edge.key)
        rect = _card(item)
        self._bulk.pop(item, None)
        self.removeItem(item)
        self.reroute_near([rect])

    def set_positions(self, positions: dict[str, tuple[float, float]]) -> list[str]:
        """Move blocks; returns the ids that really moved. Every move goes through here
        (blocks send no geometry changes), so each wire is re-routed once per batch:
        the moved blocks' own wires, and the wires around where they were and are.

        While a big drag has the index switched off (each query would visit every item),
        wires between two blocks that moved alike are carried along as they are, others
        get their plain bezier, and routing catches up when the index comes back."""
        moved: list[NodeItem] = []
        rects: list[QRectF] = []
        shift: dict[NodeItem, QPointF] = {}
        bulk = self.itemIndexMethod() == QGraphicsScene.ItemIndexMethod.NoIndex
        for node_id, (x, y) in positions.items():
            item = self.nodes.get(node_id)
            if item is not None and (item.x() != x or item.y() != y):
                before = _card(item)
                if bulk:
                    self._bulk.setdefault(item, before)
                    shift[item] = QPointF(x - item.x(), y - item.y())
                item.setPos(x, y)
                rects += [before, _card(item)]
                moved.append(item)
        if not moved:
            return []
        self._cover(_union(rects[1::2]))
        own = [e for item in moved for e in item.edges]
        if bulk:
            for edge in dict.fromkeys(own):
                d = shift.get(edge.src)
                if d is not None and d == shift.get(edge.dst):
                    edge.shift(d)
                else:
                    edge.straighten()
                    self._straightened = True
        else:
            self.reroute_near(rects, own)
        return [item.node_id for item in moved]

    def setItemIndexMethod(self, method) -> None:  # noqa: N802 (Qt override)
        """Switching the index back on after a big drag routes what the drag deferred
        (MoveBlocks switches it off for many blocks and back on when done)."""
        super().setItemIndexMethod(method)
        if method == QGraphicsScene.ItemIndexMethod.BspTreeIndex:
            area = self.sceneRect()     # a new BSP index learns the scene's rect only
            self.setSceneRect(QRectF())   # from sceneRectChanged: without it, it is
            self.setSceneRect(area)       # one leaf and every query visits every item
        if method == QGraphicsScene.ItemIndexMethod.BspTreeIndex and self._bulk:
            start, self._bulk = self._bulk, {}
            straightened, self._straightened = self._straightened, False
            moves = {(_card(item).topLeft() - was.topLeft()).toTuple()
                     for item, was in start.items()}
            if len(start) == len(self.nodes) and len(moves) == 1 and not straightened:
                return      # the whole graph moved as one: every wire came along as it was
            rects = list(start.values()) + [_card(item) for item in start]
            self.reroute_near(rects, [e for item in start for e in item.edges])

    def _cover(self, rect: QRectF) -> None:
        """Keep the scene's rect fixed, grown in big steps to cover the blocks. Left to
        grow by itself, Qt recomputes it from every item's bounds (a Python call each)
        before the next index query after any change, and wires query the index
        whenever they re-route: quadratic when loading, slow when dragging."""
        area = self.sceneRect()
        if not area.contains(rect):
            pad = INDEX_PAD
            self.setSceneRect(area.united(rect).adjusted(-pad, -pad, pad, pad))

    def reroute_near(self, rects: list[QRectF], edges: Iterable[EdgeItem] = ()) -> None:
        """Re-route `edges` and every wire whose region meets one of `rects` (blocks that
        came, went or moved there), each once, in a stable order so lanes are too."""
        todo = dict.fromkeys(edges)
        if self.edges:
            mode = Qt.ItemSelectionMode.IntersectsItemBoundingRect
            for rect in rects:
                block = card_area(rect)
                for item in self.items(rect, mode):
                    if (isinstance(item, EdgeItem) and item not in todo
                            and item.affected_by(block)):
                        todo[item] = None
        if not todo:
            return
        ordered = sorted(todo, key=lambda e: e.key)
        for edge in ordered:        # free their lanes first, so the batch packs them anew
            self.router.release(edge)
        for edge in ordered:
            edge.refresh()

    # ---- edges -------------------------------------------------------------------------

    def add_edge(self, src: str, dst: str, port: int, label: str = "") -> EdgeItem:
        key = (src, dst, port)
        edge = self.edges.get(key)
        if edge is not None:
            edge.set_label(label)
            return edge
        try:
            a, b = self.nodes[src], self.nodes[dst]
        except KeyError as missing:
            raise KeyError(f"add_edge {src} → {dst}: no block {missing} on the canvas") from None
        edge = EdgeItem(a, b, port, self.palette_, label,
                        None if self._loading else self.router)
        edge.router = self.router   # while loading, it is routed when loading() ends
        a.edges.add(edge)
        b.edges.add(edge)
        self.edges[key] = edge
        self.addItem(edge)
        b.update()   # the port now shows as connected
        return edge

    def remove_edge(self, key: EdgeKey) -> None:
        edge = self.edges.pop(tuple(key), None)
        if edge is None:
            return
        edge.src.edges.discard(edge)
        edge.dst.edges.discard(edge)
        edge.dst.update()
        self.router.release(edge)
        self.removeItem(edge)

    def edge_into(self, node_id: str, port: int) -> EdgeItem | None:
        item = self.nodes.get(node_id)
        if item is None:
            return None
        return next((e for e in item.edges if e.dst is item and e.port == port), None)

    # ---- hit tests -----------------------------------------------------------------------

    def node_at(self, pos: QPointF) -> NodeItem | None:
        return next((i for i in self.items(pos) if isinstance(i, NodeItem)), None)

    def item_at(self, pos: QPointF) -> NodeItem | EdgeItem | None:
        """The topmost block or visible wire under `pos` (blocks sit above wires)."""
        for item in self.items(pos):
            if isinstance(item, NodeItem | EdgeItem) and item.isVisible():
                return item
        return None

    def port_at(self, pos: QPointF, tolerance: float) -> tuple[NodeItem, int] | None:
        """The port whose centre is within `tolerance` of `pos`, on the topmost block."""
        box = QRectF(pos.x() - tolerance, pos.y() - tolerance, 2 * tolerance, 2 * tolerance)
        for item in self.items(box):
            if isinstance(item, NodeItem):
                port = item.port_at(item.mapFromScene(pos), tolerance)
                if port is not None:
                    return item, port
        return None

    # ---- everything --------------------------------------------------------------------

    def clear_graph(self) -> None:
        for edge in self.edges.values():
            self.removeItem(edge)
        for node in self.nodes.values():
            self.removeItem(node)
        self.edges.clear()
        self.nodes.clear()
        self.router.clear()
        self._bulk.clear()
        self._straightened = False
        self.setSceneRect(HOME)   # start small again: the index stays fine-grained

    def set_palette(self, palette: CanvasPalette) -> None:
        self.palette_ = palette
        items: Iterable = list(self.nodes.values()) + list(self.edges.values())
        for item in items:
            item.set_palette(palette)


def _card(item: NodeItem) -> QRectF:
    return item.card_rect().translated(item.pos())


def _union(rects: list[QRectF]) -> QRectF:
    out = QRectF(rects[0])
    for rect in rects[1:]:
        out = out.united(rect)
    return out
