"""Wires: a cubic bezier that leaves an output port downwards and enters an input port
from above, drawn under the blocks, with a wide invisible stroke for easy picking.

The same path function draws the temporary wire while the user drags, so a wire
looks the same before and after it is made.

A wire whose bezier would run behind a block other than its own two ends (a residual
shortcut skipping a column of blocks) is drawn as a detour instead: down out of its
output, across to a vertical lane beside the blocks in the way (on their right, or on
their left when the right is crowded), along the lane, and into its input from above,
with rounded corners. `WireRouter` (one per scene) picks the lanes and keeps detours
that share a span from lying on top of each other; the scene re-routes a wire when
its blocks move, or when a block comes, goes or moves where it may change its route.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QFont, QFontMetricsF, QPainter, QPainterPath, QPainterPathStroker, QPen
from PySide6.QtWidgets import QGraphicsItem, QStyleOptionGraphicsItem, QWidget

from .model import OUTPUT, EdgeKey
from .node_item import NodeItem
from .theme import CanvasPalette

if TYPE_CHECKING:
    from PySide6.QtWidgets import QGraphicsScene

PICK_WIDTH = 10.0
THIN_BELOW = 0.5          # zoom below which plain wires are drawn one pixel wide
LABEL_FONT = QFont()
LABEL_FONT.setPixelSize(11)

LANE_MARGIN = 28.0        # a detour's lane runs this far beside the blocks it avoids
LANE_GAP = 14.0           # detours with overlapping spans keep their lanes this far apart
STUB = 12.0               # a detour leaves / enters its ports vertically for this long
CORNER = 12.0             # radius of a detour's rounded corners
INSET = 1.0               # grazing a card's edge is not crossing it
ROUTE_TRIES = 6           # lanes tried past newly met blocks, per side
KAPPA = 0.5523            # cubic control distance that approximates a quarter circle


def wire_path(start: QPointF, end: QPointF) -> QPainterPath:
    """Bezier from `start` (an output, heading down) to `end` (an input, entered from above).

    The tangent length grows with the distance, and more when the wire has to climb
    back up, so backward wires loop around instead of cutting through their blocks.
    """
    dy = end.y() - start.y()
    dx = abs(end.x() - start.x())
    reach = max(30.0, dy * 0.5) if dy > 0 else 60.0 + min(200.0, -dy * 0.35 + dx * 0.15)
    path = QPainterPath(start)
    path.cubicTo(start + QPointF(0, reach), end - QPointF(0, reach), end)
    return path


def detour_path(start: QPointF, end: QPointF, lane_x: float) -> QPainterPath:
    """Down from `start`, across to `lane_x`, along it, across and down into `end`."""
    top, bottom = start.y() + STUB, end.y() - STUB
    return rounded_polyline([start, QPointF(start.x(), top), QPointF(lane_x, top),
                             QPointF(lane_x, bottom), QPointF(end.x(), bottom), end], CORNER)


def rounded_polyline(points: list[QPointF], radius: float) -> QPainterPath:
    """The polyline through `points` with each corner replaced by a quarter-circle-like
    cubic of up to `radius`; inner legs give each corner at most half their length,
    the first and last legs all of theirs (so a short stub can bend right at its port)."""
    pts = [points[0]]
    for p in points[1:]:           # drop repeated points and straight-through corners
        if p == pts[-1]:
            continue
        if len(pts) >= 2 and _collinear(pts[-2], pts[-1], p):
            pts[-1] = p
        else:
            pts.append(p)
    path = QPainterPath(pts[0])
    last = len(pts) - 1
    for i in range(1, last):
        a, b, c = pts[i - 1], pts[i], pts[i + 1]
        d_in, d_out = _length(b - a), _length(c - b)
        r = min(radius, d_in if i == 1 else d_in / 2, d_out if i == last - 1 else d_out / 2)
        p_in = b - (b - a) * (r / d_in)
        p_out = b + (c - b) * (r / d_out)
        path.lineTo(p_in)
        path.cubicTo(p_in + (b - p_in) * KAPPA, p_out + (b - p_out) * KAPPA, p_out)
    path.lineTo(pts[-1])
    return path


def _length(v: QPointF) -> float:
    return (v.x() * v.x() + v.y() * v.y()) ** 0.5


def _collinear(a: QPointF, b: QPointF, c: QPointF) -> bool:
    """b lies on the way from a to c (same direction, no turn)."""
    u, v = b - a, c - b
    return abs(u.x() * v.y() - u.y() * v.x()) < 1e-6 and u.x() * v.x() + u.y() * v.y() > 0


def crosses(path: QPainterPath, rect: QRectF) -> bool:
    """Whether the *line* of `path` passes through `rect`.

    QPainterPath.intersects treats an open path as the area it encloses once closed
    (a detour around a block "intersects" the block it avoids), so the test runs on
    the path followed by itself reversed: the same line, enclosing nothing.
    """
    return _overlap(path.controlPointRect(), rect) and line_only(path).intersects(rect)


def line_only(path: QPainterPath) -> QPainterPath:
    """`path` there and back again: the same line, enclosing no area (see `crosses`)."""
    probe = QPainterPath(path)
    probe.connectPath(path.toReversed())
    return probe


def _overlap(a: QRectF, b: QRectF) -> bool:
    """QRectF.intersects, but true for a zero-width rect too (a vertical wire's)."""
    return (max(a.left(), b.left()) <= min(a.right(), b.right())
            and max(a.top(), b.top()) <= min(a.bottom(), b.bottom()))


def card_scene_rect(node: NodeItem) -> QRectF:
    """A block's card in scene coordinates, less INSET (what a wire must not cross)."""
    return card_area(node.card_rect().translated(node.pos()))


def card_area(card: QRectF) -> QRectF:
    return card.adjusted(INSET, INSET, -INSET, -INSET)


RIGHT, LEFT = 1, -1


def _between(start: QPointF, end: QPointF, hit: list[QRectF]
             ) -> tuple[list[QRectF], int] | None:
    """For a wire that climbs to a block beside its own (the head of the next column of
    a long chain laid out in columns): the cards in the way on its start's side and the
    side its lane goes, so the lane runs in the gap between the two columns instead of
    around the far one. None for a wire that runs down, or with nothing on that side."""
    if end.y() >= start.y() or end.x() == start.x():
        return None
    side = RIGHT if end.x() > start.x() else LEFT
    mid = (start.x() + end.x()) / 2
    near = [r for r in hit if (r.center().x() - mid) * side < 0]
    return (near, side) if near else None


def _outer(cards: list[QRectF], side: int) -> float:
    """Where a lane beside all of `cards` on `side` runs."""
    if side == RIGHT:
        return max(r.right() for r in cards) + LANE_MARGIN
    return min(r.left() for r in cards) - LANE_MARGIN


class Route(NamedTuple):
    path: QPainterPath
    mid: QPointF          # where the label goes: on the wire, halfway along
    region: QRectF        # where a block's arrival or departure may change the route
    straight: QPainterPath | None = None    # a detour's bezier, the way it avoids


class WireRouter:
    """Routes the wires of one scene around its blocks and hands out detour lanes.

    A lane is (x, top, bottom) of a detour's vertical leg; a new detour takes the first
    x, LANE_GAP apart, that no lane overlapping its span already holds.
    """

    def __init__(self, scene: QGraphicsScene) -> None:
        self.scene = scene
        self.lanes: dict[EdgeItem, tuple[float, float, float]] = {}

    def release(self, edge: EdgeItem) -> None:
        self.lanes.pop(edge, None)

    def clear(self) -> None:
        self.lanes.clear()

    def route(self, edge: EdgeItem, start: QPointF, end: QPointF) -> Route:
        """The path for `edge` between its ports: its bezier when nothing is in the way."""
        self.lanes.pop(edge, None)
        straight = wire_path(start, end)
        ends = (edge.src, edge.dst)
        hit = self._blockers(straight, ends)
        if not hit:
            return Route(straight, (start + end) / 2, straight.controlPointRect())
        top, bottom = start.y() + STUB, end.y() - STUB
        span = (min(top, bottom), max(top, bottom))
        blocked = None
        between = _between(start, end, hit)
        if between is not None:   # between the two ends (a wrapped chain's next column)
            path, lane, blocked = self._detour(start, end, span, *between)
        if blocked != 0:
            right = self._detour(start, end, span, hit, RIGHT)
            if blocked is None or right[2] < blocked:
                path, lane, blocked = right
        if blocked:       # crowded on the right: the left side may be clear
            other = self._detour(start, end, span, hit, LEFT)
            if other[2] < blocked:
                path, lane, blocked = other
        self.lanes[edge] = (lane, *span)
        # The region covers the bezier too: a block leaving it may free the wire.
        return Route(path, QPointF(lane, (span[0] + span[1]) / 2),
                     path.controlPointRect().united(straight.controlPointRect()), straight)

    def _detour(self, start: QPointF, end: QPointF, span: tuple[float, float],
                hit: list[QRectF], side: int) -> tuple[QPainterPath, float, int]:
        """A detour on `side` (RIGHT or LEFT) of the cards in `hit`, its lane's x and how
        many cards it still crosses: each try moves the lane past the cards its vertical
        leg ran into, until it is clear or only its horizontal legs are in the way."""
        edge = _outer(hit, side)
        for _ in range(ROUTE_TRIES):
            lane = self._free_lane(edge, span, side)
            path = detour_path(start, end, lane)
            more = self._blockers(path, ())            # its own blocks count here too
            if not more:
                break
            further = _outer(more, side)
            if (further - lane) * side <= 0:           # in the way of a horizontal leg:
                break                                  # no lane further out helps
            edge = further
        return path, lane, len(more)

    def shift(self, edge: EdgeItem, d: QPointF) -> None:
        lane = self.lanes.get(edge)
        if lane is not None:
            self.lanes[edge] = (lane[0] + d.x(), lane[1] + d.y(), lane[2] + d.y())

    def _blockers(self, path: QPainterPath, skip: tuple) -> list[QRectF]:
        """Cards (less INSET) the line of `path` crosses, but those of `skip`."""
        line = line_only(path)    # the index tests it against each item's bounds in C++
        rects = []
        for item in self.scene.items(line, Qt.ItemSelectionMode.IntersectsItemBoundingRect):
            if isinstance(item, NodeItem) and item not in skip:
                rect = card_scene_rect(item)
                if line.intersects(rect):
                    rects.append(rect)
        return rects

    def _free_lane(self, x: float, span: tuple[float, float], side: int) -> float:
        """`x`, or the first x past it on `side`, LANE_GAP clear of the lanes of other
        detours whose spans overlap `span`."""
        top, bottom = span
        near = [lx for lx, t, b in self.lanes.values()
                if t < bottom and top < b and (lx - x) * side > -LANE_GAP]
        moved = True
        while moved:
            moved = False
            for lx in near:
                if abs(lx - x) < LANE_GAP - 1e-6:
                    x, moved = lx + side * LANE_GAP, True
        return x


class WireItem(QGraphicsItem):
    """A bezier between two scene points; the base of real and temporary wires."""

    def __init__(self, palette: CanvasPalette) -> None:
        super().__init__()
        self.palette = palette
        self._path = QPainterPath()
        self._mid = QPointF()
        self._region = QRectF()
        self._straight: QPainterPath | None = None
        self._bounds = QRectF()
        self._pick: QPainterPath | None = None

    def set_ends(self, start: QPointF, end: QPointF) -> None:
        """The plain bezier (the bezier's point at t = 0.5 is the ends' mean)."""
        path = wire_path(start, end)
        self._set_route(Route(path, (start + end) / 2, path.controlPointRect()))

    def _set_route(self, route: Route) -> None:
        self.prepareGeometryChange()
        self._path, self._mid, self._region, self._straight = route
        self._bounds = self._compute_bounds()
        self._pick = None

    def _compute_bounds(self) -> QRectF:
        return self._region.adjusted(-PICK_WIDTH, -PICK_WIDTH, PICK_WIDTH, PICK_WIDTH)

    def path(self) -> QPainterPath:
        return self._path

    def midpoint(self) -> QPointF:
        """Halfway along the wire: where its label is drawn."""
        return self._mid

    def is_detour(self) -> bool:
        return self._straight is not None

    def boundingRect(self) -> QRectF:  # noqa: N802 (Qt override)
        return self._bounds

    def shape(self) -> QPainterPath:
        if self._pick is None:   # built on first hit test, not on every move
            stroker = QPainterPathStroker()
            stroker.setWidth(PICK_WIDTH)
            self._pick = stroker.createStroke(self._path)
        return self._pick

    def set_palette(self, palette: CanvasPalette) -> None:
        self.palette = palette
        self.update()

    def _pen(self, lod: float) -> QPen:
        pen = QPen(self.palette.wire_hover, 2.0, Qt.PenStyle.DashLine)
        pen.setCosmetic(True)
        return pen

    def paint(self, painter: QPainter, option: QStyleOptionGraphicsItem,
              widget: QWidget | None = None) -> None:
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.setBrush(Qt.BrushStyle.NoBrush)
        painter.setPen(self._pen(option.levelOfDetailFromTransform(painter.worldTransform())))
        painter.drawPath(self._path)


class EdgeItem(WireItem):
    """A wire the document made: selectable, hover-highlighted, labelled with its shape."""

    def __init__(self, src: NodeItem, dst: NodeItem, port: int, palette: CanvasPalette,
                 label: str = "", router: WireRouter | None = None) -> None:
        super().__init__(palette)
        self.src, self.dst, self.port = src, dst, port
        self.router = router
        self.label = label
        self._label_width = _text_width(label)
        self.hovered = False
        self.setZValue(-1.0)
        self.setFlag(QGraphicsItem.GraphicsItemFlag.ItemIsSelectable)
        self.setAcceptHoverEvents(True)
        self.setToolTip(label)
        self.refresh()

    @property
    def key(self) -> EdgeKey:
        return (self.src.node_id, self.dst.node_id, self.port)

    def refresh(self) -> None:
        """Re-route after either block, or a block near the wire, moved or changed."""
        start, end = self.src.port_scene_pos(OUTPUT), self.dst.port_scene_pos(self.port)
        if self.router is None:
            self.set_ends(start, end)
        else:
            self._set_route(self.router.route(self, start, end))

    def affected_by(self, block: QRectF) -> bool:
        """Whether a block arriving at or leaving `block` (a card, less INSET) may change
        this wire's route: it is (or was) in the way of its bezier, or inside the box of
        its detour (in the way of the lane, or what pushed the lane out that far)."""
        if self._straight is not None:
            return (_overlap(self._path.controlPointRect(), block)
                    or crosses(self._straight, block))
        return crosses(self._path, block)

    def shift(self, d: QPointF) -> None:
        """Both blocks moved by `d`: carry the wire along as it is, without routing."""
        straight = None if self._straight is None else self._straight.translated(d)
        self._set_route(Route(self._path.translated(d), self._mid + d,
                              self._region.translated(d), straight))
        if self.router is not None:
            self.router.shift(self, d)

    def straighten(self) -> None:
        """The plain bezier for now, without routing (see GraphScene.set_positions)."""
        if self.router is not None:
            self.router.release(self)
        self.set_ends(self.src.port_scene_pos(OUTPUT), self.dst.port_scene_pos(self.port))

    def set_label(self, label: str) -> None:
        if label != self.label:
            self.prepareGeometryChange()
            self.label = label
            self._label_width = _text_width(label)
            self._bounds = self._compute_bounds()
            self.setToolTip(label)

    def _compute_bounds(self) -> QRectF:
        """The stroke plus room for the label drawn at the midpoint while hovered."""
        return super()._compute_bounds().united(self._label_rect())

    def _label_rect(self) -> QRectF:
        if not self.label:
            return QRectF()
        mid, w = self.midpoint(), self._label_width
        return QRectF(mid.x() - w / 2, mid.y() - 9, w, 18)

    def hoverEnterEvent(self, event) -> None:  # noqa: N802 (Qt override)
        self.hovered = True
        self.update()

    def hoverLeaveEvent(self, event) -> None:  # noqa: N802 (Qt override)
        self.hovered = False
        self.update()

    def _pen(self, lod: float) -> QPen:
        pal = self.palette
        if self.isSelected():
            pen = QPen(pal.selection, 3.0)
        elif self.hovered:
            pen = QPen(pal.wire_hover, 2.5)
        else:   # hairlines when zoomed out: thinner looks right and strokes twice as fast
            pen = QPen(pal.wire, 1.8 if lod >= THIN_BELOW else 1.0)
        pen.setCosmetic(True)
        pen.setCapStyle(Qt.PenCapStyle.RoundCap)
        return pen

    def paint(self, painter: QPainter, option: QStyleOptionGraphicsItem,
              widget: QWidget | None = None) -> None:
        super().paint(painter, option, widget)
        if self.hovered and self.label:
            rect = self._label_rect()
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(self.palette.wire_hover)
            painter.drawRoundedRect(rect, 9, 9)
            painter.setPen(Qt.GlobalColor.white)
            painter.setFont(LABEL_FONT)
            painter.drawText(rect, Qt.AlignmentFlag.AlignCenter, self.label)


def _text_width(label: str) -> float:
    return QFontMetricsF(LABEL_FONT).horizontalAdvance(label) + 12 if label else 0.0
