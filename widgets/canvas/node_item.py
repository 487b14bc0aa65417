"""One block on the canvas: a rounded card with a coloured header, a subtitle, two
badges and its ports, painted from a NodeView.

The item is cached as a device-resolution pixmap (crisp at any zoom or DPI, and a
1,000-block graph repaints by blitting), so all drawing lives in one `paint`, and
state changes (view, selection, hover, wires) invalidate only this item.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QBrush, QFont, QFontMetricsF, QPainter, QPainterPath, QPen
from PySide6.QtWidgets import QGraphicsItem, QStyleOptionGraphicsItem, QWidget

from .model import OUTPUT, NodeView
from .theme import CanvasPalette, category_colour

if TYPE_CHECKING:
    from .edge_item import EdgeItem

WIDTH = 180.0
HEIGHT = 76.0
HEADER = 24.0
RADIUS = 7.0
PORT_RADIUS = 5.5
NUMBERED_PORT_RADIUS = 7.0
PORT_SPACING_MIN = 26.0      # blocks with many inputs grow wider rather than cram ports
MARGIN = 12.0                # room outside the card for ports, shadow and selection ring
LOW_DETAIL = 0.5             # below this zoom, blocks show only their id, large
OVERVIEW = 0.12              # below this, not even that
TITLE_PIXELS = 10.0          # screen height of a title zoomed out (never smaller at 12 px)
MIN_TITLE_PIXELS = 9.0       # the least it shrinks to, to fit, before it is cut short
LINE = 1.15                  # line height, in font heights, of a title on two lines
OVERVIEW_HEADER = 10.0       # the header strip's height when only the id is shown
# From this zoom up, every block's title (its id, up to 16 characters) is drawn whole
# and at least MIN_TITLE_PIXELS tall on screen; Fit All of a laid-out network aims here.
LEGIBLE_ZOOM = 0.38
LOCK_ROOM = 16.0             # header room the lock badge of a frozen block takes
STATUS_ROOM = 20.0           # header room the error or warning icon takes


def _font(pixels: int, bold: bool = False) -> QFont:
    font = QFont()
    font.setPixelSize(pixels)
    font.setBold(bold)
    return font


TITLE_FONT = _font(12, bold=True)
TYPE_FONT = _font(11)
SUBTITLE_FONT = _font(12)
BADGE_FONT = _font(10)
PORT_FONT = _font(9, bold=True)


def block_width(inputs: int) -> float:
    return max(WIDTH, PORT_SPACING_MIN * (inputs + 1))


def fit_title(text: str, lod: float, width: float, height: float) -> tuple[float, list[str]]:
    """The bold font size (scene pixels) and the lines (one, or two split after a "_")
    that show ``text`` in a ``width`` × ``height`` box at zoom ``lod``: TITLE_PIXELS
    tall on screen when it fits, else as large as one or two lines allow, and only
    below MIN_TITLE_PIXELS on one line, cut short with "…".

    A zoomed-out overview of a long network (MobileNetV2 fitted to the window) is
    only worth having when the blocks' names can be read in it."""
    reference = QFontMetricsF(_font(100, bold=True))

    def size_for(lines: list[str]) -> float:
        widest = max(reference.horizontalAdvance(line) for line in lines) / 100
        return min(TITLE_PIXELS / lod, height / (LINE * len(lines)) if len(lines) > 1
                   else height, width / max(widest, 1e-6))

    options = [(size_for([text]), [text])]
    if options[0][0] * lod < TITLE_PIXELS - 1e-6:
        cuts = [i + 1 for i, ch in enumerate(text[:-1]) if ch == "_"] or [len(text) // 2]
        for cut in sorted(cuts, key=lambda c: abs(2 * c - len(text))):  # even first
            lines = [text[:cut], text[cut:]]
            options.append((size_for(lines), lines))
    size, lines = max(options, key=lambda o: o[0])  # the first of equals: one line
    if size * lod >= MIN_TITLE_PIXELS - 1e-6:
        return size, lines
    return min(height, MIN_TITLE_PIXELS / lod), [text]


class NodeItem(QGraphicsItem):
    """The drawing of one block; it knows its wires only to keep them attached."""

    def __init__(self, view: NodeView, palette: CanvasPalette) -> None:
        super().__init__()
        self.view = view
        self.palette = palette
        self.edges: set[EdgeItem] = set()
        self.hover_port: int | None = None
        self._width = block_width(view.inputs)
        self.setFlag(QGraphicsItem.GraphicsItemFlag.ItemIsSelectable)
        self.setCacheMode(QGraphicsItem.CacheMode.DeviceCoordinateCache)
        self.setToolTip(_tooltip(view))
        self.setPos(*view.pos)

    # ---- geometry ----------------------------------------------------------------------

    @property
    def node_id(self) -> str:
        return self.view.id

    def card_rect(self) -> QRectF:
        return QRectF(0.0, 0.0, self._width, HEIGHT)

    def boundingRect(self) -> QRectF:  # noqa: N802 (Qt override)
        return QRectF(-MARGIN, -MARGIN, self._width + 2 * MARGIN, HEIGHT + 2 * MARGIN)

    def shape(self) -> QPainterPath:
        """The card plus its port discs: what clicks and rubber bands hit."""
        path = QPainterPath()
        path.addRoundedRect(self.card_rect(), RADIUS, RADIUS)
        r = self._port_radius()
        for port in self.ports():
            path.addEllipse(self.port_pos(port), r, r)
        return path

    def ports(self) -> list[int]:
        """Every port index: inputs 0..n-1, then OUTPUT when the block has one."""
        return list(range(self.view.inputs)) + ([OUTPUT] if self.view.has_output else [])

    def port_pos(self, port: int) -> QPointF:
        """Port centre in item coordinates: inputs evenly along the top, output bottom centre."""
        if port == OUTPUT:
            return QPointF(self._width / 2, HEIGHT)
        return QPointF(self._width * (port + 1) / (self.view.inputs + 1), 0.0)

    def port_scene_pos(self, port: int) -> QPointF:
        return self.mapToScene(self.port_pos(port))

    def port_at(self, pos: QPointF, tolerance: float) -> int | None:
        """The port whose centre lies within `tolerance` of `pos` (item coordinates)."""
        best, best_d = None, tolerance * tolerance
        for port in self.ports():
            d = self.port_pos(port) - pos
            dist = d.x() * d.x() + d.y() * d.y()
            if dist <= best_d:
                best, best_d = port, dist
        return best

    def connected_inputs(self) -> set[int]:
        return {e.port for e in self.edges if e.dst is self}

    def free_inputs(self) -> list[int]:
        used = self.connected_inputs()
        return [p for p in range(self.view.inputs) if p not in used]

    def _port_radius(self) -> float:
        return NUMBERED_PORT_RADIUS if self.view.inputs > 1 else PORT_RADIUS

    # ---- state changes -----------------------------------------------------------------

    def set_view(self, view: NodeView) -> None:
        """New texts, ports or error; wires are re-routed only when ports moved."""
        old = self.view
        self.view = view
        width = block_width(view.inputs)
        if width != self._width:
            self.prepareGeometryChange()
            self._width = width
        self.setToolTip(_tooltip(view))
        moved = (self.x(), self.y()) != tuple(view.pos)   # the document's position wins
        if moved:
            self.setPos(*view.pos)
        if moved or view.inputs != old.inputs or view.has_output != old.has_output:
            self.refresh_edges()
        self.update()

    def set_palette(self, palette: CanvasPalette) -> None:
        self.palette = palette
        self.update()

    def set_hover_port(self, port: int | None) -> None:
        if port != self.hover_port:
            self.hover_port = port
            self.update()

    def refresh_edges(self) -> None:
        for edge in self.edges:
            edge.refresh()

    def itemChange(self, change, value):  # noqa: N802 (Qt override)
        if change == QGraphicsItem.GraphicsItemChange.ItemSelectedHasChanged:
            self.setZValue(1.0 if value else 0.0)
        return super().itemChange(change, value)

    # ---- painting ----------------------------------------------------------------------

    def paint(self, painter: QPainter, option: QStyleOptionGraphicsItem,
              widget: QWidget | None = None) -> None:
        pal = self.palette
        lod = option.levelOfDetailFromTransform(painter.worldTransform())
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        card = self.card_rect()
        colour = category_colour(self.view.category, pal)
        if lod >= LOW_DETAIL:
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(pal.shadow)
            painter.drawRoundedRect(card.translated(0, 2.5).adjusted(-1, -1, 1, 1),
                                    RADIUS + 1, RADIUS + 1)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(pal.body)
        painter.drawRoundedRect(card, RADIUS, RADIUS)
        # the header: the card's rounded top, square below (a strip when zoomed out: the
        # id needs the room); drawn as a rounded rect plus a plain one, since a path
        # intersection per card per paint cost about 2 ms (100 cards repainted at once)
        strip = HEADER if lod >= LOW_DETAIL else OVERVIEW_HEADER
        painter.setBrush(colour)
        painter.drawRoundedRect(QRectF(card.left(), card.top(), card.width(),
                                       min(strip, card.height())), RADIUS, RADIUS)
        if strip > RADIUS:
            painter.fillRect(QRectF(card.left(), card.top() + RADIUS, card.width(),
                                    min(strip, card.height()) - RADIUS), colour)
        self._paint_outline(painter, card)
        if lod >= LOW_DETAIL:
            self._paint_texts(painter, lod)
            self._paint_status_icon(painter)
            self._paint_lock(painter)
        elif lod >= OVERVIEW:
            self._paint_overview_label(painter, lod)
        self._paint_ports(painter, colour, lod)

    def _paint_overview_label(self, painter: QPainter, lod: float) -> None:
        """Zoomed out, the card's normal text is unreadable: show just the id, sized to
        stay about TITLE_PIXELS tall on screen (on two lines if need be), so the
        overview still says what is where."""
        room = QRectF(6, OVERVIEW_HEADER + 2, self._width - 12, HEIGHT - OVERVIEW_HEADER - 4)
        size, lines = fit_title(self.view.id, lod, room.width(), room.height())
        font = QFont(TITLE_FONT)
        font.setPixelSize(max(1, int(size)))
        painter.setFont(font)
        painter.setPen(self.palette.text)
        metrics = QFontMetricsF(font)
        text = "\n".join(metrics.elidedText(line, Qt.TextElideMode.ElideRight, room.width())
                         for line in lines)
        painter.drawText(room, Qt.AlignmentFlag.AlignCenter, text)

    def _paint_outline(self, painter: QPainter, card: QRectF) -> None:
        pal, view = self.palette, self.view
        painter.setBrush(Qt.BrushStyle.NoBrush)
        if view.error:
            pen = QPen(pal.error, 2.0)
        elif view.warning:
            pen = QPen(pal.warning, 1.8, Qt.PenStyle.DashLine)
        else:
            pen = QPen(pal.outline, 1.0)
        pen.setCosmetic(True)
        painter.setPen(pen)
        painter.drawRoundedRect(card.adjusted(0.5, 0.5, -0.5, -0.5), RADIUS, RADIUS)
        if self.isSelected():
            ring = QPen(pal.selection, 2.5)
            ring.setCosmetic(True)
            painter.setPen(ring)
            painter.drawRoundedRect(card.adjusted(-3.5, -3.5, 3.5, 3.5), RADIUS + 3, RADIUS + 3)

    def _paint_texts(self, painter: QPainter, lod: float) -> None:
        pal, view, w = self.palette, self.view, self._width
        icon_room = self._status_room() + (LOCK_ROOM if view.frozen else 0.0)
        left, right = 9.0, w - 9.0 - icon_room
        title_font = TITLE_FONT
        if TITLE_FONT.pixelSize() * lod < TITLE_PIXELS:  # zoomed out: a larger title
            title_font = QFont(TITLE_FONT)
            title_font.setPixelSize(int(min(TITLE_PIXELS / lod, HEADER - 4)))
        # the id is the block's name: it gets the room it needs, the type what is left
        title_m, type_m = QFontMetricsF(title_font), QFontMetricsF(TYPE_FONT)
        title = title_m.elidedText(view.id, Qt.TextElideMode.ElideRight, right - left)
        painter.setFont(title_font)
        painter.setPen(pal.title)
        head = QRectF(left, 0, right - left, HEADER)
        flags = Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter
        painter.drawText(head, flags, title)
        # measured with the painter's own font: on some platforms bold text renders
        # wider than QFontMetricsF predicts, and the type would overlap the id
        type_left = max(left + title_m.horizontalAdvance(title),
                        painter.boundingRect(head, flags, title).right()) + 7
        if type_left < right - 12:
            kind = type_m.elidedText(view.type, Qt.TextElideMode.ElideRight, right - type_left)
            painter.setFont(TYPE_FONT)
            painter.setPen(pal.title_dim)
            painter.drawText(QRectF(type_left, 0, right - type_left, HEADER),
                             Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter, kind)
        if view.subtitle:
            sub_m = QFontMetricsF(SUBTITLE_FONT)
            painter.setFont(SUBTITLE_FONT)
            painter.setPen(pal.text)
            text = sub_m.elidedText(view.subtitle, Qt.TextElideMode.ElideRight, w - 18)
            painter.drawText(QRectF(9, HEADER + 3, w - 18, 20),
                             Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter, text)
        self._paint_badges(painter)

    def _paint_badges(self, painter: QPainter) -> None:
        pal, view, w = self.palette, self.view, self._width
        metrics = QFontMetricsF(BADGE_FONT)
        painter.setFont(BADGE_FONT)
        top, height, pad = HEIGHT - 23.0, 16.0, 6.0
        params_w = metrics.horizontalAdvance(view.params) + 2 * pad if view.params else 0.0
        if view.params:
            rect = QRectF(w - 8 - params_w, top, params_w, height)
            self._badge(painter, rect, view.params, pal.badge_text)
        room = w - 16 - (params_w + 6 if params_w else 0)
        shape = metrics.elidedText(view.shape, Qt.TextElideMode.ElideMiddle, room - 2 * pad)
        if shape:
            unknown = view.shape.strip() in ("?", "")
            rect = QRectF(8, top, metrics.horizontalAdvance(shape) + 2 * pad, height)
            self._badge(painter, rect, shape, pal.text_dim if unknown else pal.badge_text)

    def _badge(self, painter: QPainter, rect: QRectF, text: str, colour) -> None:
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(self.palette.badge)
        painter.drawRoundedRect(rect, rect.height() / 2, rect.height() / 2)
        painter.setPen(colour)
        painter.drawText(rect, Qt.AlignmentFlag.AlignCenter, text)

    def _paint_status_icon(self, painter: QPainter) -> None:
        """A round '!' for an error, a triangle for a warning, at the header's right end."""
        view, pal = self.view, self.palette
        if not (view.error or view.warning):
            return
        c = QPointF(self._width - 15, HEADER / 2)
        painter.setPen(Qt.PenStyle.NoPen)
        if view.error:
            painter.setBrush(pal.error)
            painter.drawEllipse(c, 7.5, 7.5)
            mark = QPointF(0, 0.5)
        else:
            tri = QPainterPath(c + QPointF(0, -7.5))
            tri.lineTo(c + QPointF(8.5, 7))
            tri.lineTo(c + QPointF(-8.5, 7))
            tri.closeSubpath()
            painter.fillPath(tri, pal.warning)
            mark = QPointF(0, 2)
        painter.setPen(QPen(Qt.GlobalColor.white if view.error else Qt.GlobalColor.black))
        painter.setFont(PORT_FONT)
        painter.drawText(QRectF(c.x() - 6, c.y() - 7, 12, 14).translated(mark),
                         Qt.AlignmentFlag.AlignCenter, "!")

    def _status_room(self) -> float:
        """Header room at the right end taken by the error or warning icon."""
        return STATUS_ROOM if (self.view.error or self.view.warning) else 0.0

    def lock_rect(self) -> QRectF | None:
        """Where the lock badge of a frozen block is drawn (item coordinates): at the
        header's right end, left of an error or warning icon; None when not frozen."""
        if not self.view.frozen:
            return None
        right = self._width - 6 - self._status_room()
        return QRectF(right - 12, HEADER / 2 - 7, 12, 14)

    def _paint_lock(self, painter: QPainter) -> None:
        """A padlock: this block's weights are frozen (training leaves them alone)."""
        rect = self.lock_rect()
        if rect is None:
            return
        colour = self.palette.title
        body = QRectF(rect.left() + 1, rect.top() + 6, rect.width() - 2, 8)
        shackle = QPen(colour, 1.6)
        painter.setPen(shackle)
        painter.setBrush(Qt.BrushStyle.NoBrush)
        loop = QPainterPath(QPointF(body.left() + 2.5, body.top()))
        loop.lineTo(body.left() + 2.5, rect.top() + 3.5)
        loop.arcTo(QRectF(body.left() + 2.5, rect.top() + 0.5, body.width() - 5, 6), 180, -180)
        loop.lineTo(body.right() - 2.5, body.top())
        painter.drawPath(loop)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(colour)
        painter.drawRoundedRect(body, 1.5, 1.5)

    def _paint_ports(self, painter: QPainter, colour, lod: float) -> None:
        pal = self.palette
        r = self._port_radius()
        used = self.connected_inputs()
        numbered = self.view.inputs > 1 and lod >= LOW_DETAIL
        outline = QPen(pal.port_outline, 1.3)
        outline.setCosmetic(True)
        if numbered:
            painter.setFont(PORT_FONT)
        for port in self.ports():
            centre = self.port_pos(port)
            hovered = port == self.hover_port
            if port == OUTPUT:
                fill = colour
            else:
                fill = pal.port_outline if port in used else pal.port
            painter.setPen(outline)
            painter.setBrush(QBrush(fill))
            radius = (PORT_RADIUS if port == OUTPUT else r) + (1.5 if hovered else 0.0)
            painter.drawEllipse(centre, radius, radius)
            if hovered:
                ring = QPen(pal.selection, 2.0)
                ring.setCosmetic(True)
                painter.setPen(ring)
                painter.setBrush(Qt.BrushStyle.NoBrush)
                painter.drawEllipse(centre, radius + 2.5, radius + 2.5)
            if numbered and port != OUTPUT:   # 0-based, as the analysis messages say
                painter.setPen(pal.port if port in used else pal.port_outline)
                painter.drawText(QRectF(centre.x() - r, centre.y() - r, 2 * r, 2 * r),
                                 Qt.AlignmentFlag.AlignCenter, str(port))


def _tooltip(view: NodeView) -> str:
    """The block's problem, and whether it is frozen."""
    text = view.error or view.warning or ""
    if view.frozen:
        text = "Frozen: training keeps this block's weights" + (f"\n{text}" if text else "")
    return text
