"""The block palette: every catalogue block, grouped by family, searchable, draggable.

It reads ``engine.blocks.CATALOGUE`` (torch-free) so a new block appears here without
touching this file. Dropping an entry on the canvas hands over only the type name
(mime type :data:`MIME_TYPE`); what happens next is the canvas's and the window's
business.
"""

from __future__ import annotations

import html

from PySide6.QtCore import QEvent, QMimeData, QPoint, QRectF, Qt, Signal
from PySide6.QtGui import QColor, QDrag, QFont, QKeyEvent, QPainter, QPixmap
from PySide6.QtWidgets import (
    QAbstractItemView,
    QLineEdit,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from engine.blocks import CATALOGUE, CATEGORIES
from engine.spec import BlockSpec
from engine.units import json_text

from .style import category_color, category_icon, palette_is_dark

MIME_TYPE = "application/x-convas-block"
TYPE_ROLE = Qt.ItemDataRole.UserRole  # block type name on block items, None on groups
SEARCH_ROLE = Qt.ItemDataRole.UserRole + 1  # lower-cased text the search looks in


def block_mime_data(type_name: str) -> QMimeData:
    """What a palette drag carries: the type name as utf-8 under :data:`MIME_TYPE`.

    Plain text is added too, so dropping on a text field writes the name.
    """
    mime = QMimeData()
    mime.setData(MIME_TYPE, type_name.encode("utf-8"))
    mime.setText(type_name)
    return mime


def block_tooltip(spec: BlockSpec) -> str:
    """Rich-text tooltip: the catalogue's doc, the inputs it takes and its parameters."""
    parts = [f"<b>{html.escape(spec.type)}</b> &nbsp;<i>{html.escape(spec.category)}</i>",
             f"<p>{html.escape(spec.doc)}</p>",
             f"<p style='margin-top:2px'>Takes {html.escape(spec.input_range())}.</p>"]
    if spec.params:
        rows = "".join(
            f"<li><tt>{html.escape(p.name)}</tt> = {html.escape(json_text(p.default))} — "
            f"{html.escape(p.doc)}</li>"
            for p in spec.params)
        parts.append(f"<p style='margin-bottom:0'>Parameters:</p><ul style='margin-top:0'>"
                     f"{rows}</ul>")
    else:
        parts.append("<p>No parameters.</p>")
    return "<qt>" + "".join(parts) + "</qt>"


class BlockTree(QTreeWidget):
    """The tree itself: drags carry the type name, Enter activates like a double-click."""

    activated_block = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("paletteTree")
        self.setHeaderHidden(True)
        self.setRootIsDecorated(False)
        self.setIndentation(8)
        self.setUniformRowHeights(True)
        self.setDragEnabled(True)
        self.setDragDropMode(QAbstractItemView.DragDropMode.DragOnly)
        self.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.setExpandsOnDoubleClick(False)
        self.itemDoubleClicked.connect(self._on_double_click)

    def mimeTypes(self) -> list[str]:
        return [MIME_TYPE]

    def mimeData(self, items: list[QTreeWidgetItem]) -> QMimeData | None:
        names = [i.data(0, TYPE_ROLE) for i in items if i.data(0, TYPE_ROLE)]
        return block_mime_data(names[0]) if names else None

    def startDrag(self, supported: Qt.DropAction) -> None:
        item = self.currentItem()
        type_name = item.data(0, TYPE_ROLE) if item is not None else None
        if not type_name:
            return
        drag = QDrag(self)
        drag.setMimeData(block_mime_data(type_name))
        pixmap = self._drag_pixmap(type_name)
        drag.setPixmap(pixmap)
        drag.setHotSpot(QPoint(int(pixmap.deviceIndependentSize().width() / 2), 12))
        drag.exec(Qt.DropAction.CopyAction)

    def _drag_pixmap(self, type_name: str) -> QPixmap:
        """A small block-like chip in the category colour, so the user sees what drops."""
        dark = palette_is_dark(self.palette())
        color = category_color(CATALOGUE[type_name].category, dark)
        font = QFont(self.font())
        font.setBold(True)
        width = self.fontMetrics().horizontalAdvance(type_name) + 36
        ratio = self.devicePixelRatioF()
        pix = QPixmap(int(width * ratio), int(26 * ratio))
        pix.setDevicePixelRatio(ratio)
        pix.fill(Qt.GlobalColor.transparent)
        p = QPainter(pix)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        p.setPen(color.darker(130))
        fill = QColor(color)
        fill.setAlpha(225)
        p.setBrush(fill)
        p.drawRoundedRect(QRectF(0.5, 0.5, width - 1, 25), 6, 6)
        p.setPen(QColor("#ffffff"))
        p.setFont(font)
        p.drawText(QRectF(0, 0, width, 26), Qt.AlignmentFlag.AlignCenter, type_name)
        p.end()
        return pix

    def keyPressEvent(self, event: QKeyEvent) -> None:
        if event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter):
            item = self.currentItem()
            if item is not None and item.data(0, TYPE_ROLE):
                self.activated_block.emit(item.data(0, TYPE_ROLE))
                return
        super().keyPressEvent(event)

    def _on_double_click(self, item: QTreeWidgetItem, _column: int) -> None:
        type_name = item.data(0, TYPE_ROLE)
        if type_name:
            self.activated_block.emit(type_name)
        else:
            item.setExpanded(not item.isExpanded())


class Palette(QWidget):
    """Search box over a tree of blocks; emits :attr:`block_activated` on double-click/Enter."""

    block_activated = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.search = QLineEdit(self)
        self.search.setObjectName("paletteSearch")
        self.search.setPlaceholderText("Search blocks…")
        self.search.setClearButtonEnabled(True)
        self.search.setToolTip("Filter by name or description; Enter adds the first match")
        self.tree = BlockTree(self)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.setSpacing(4)
        layout.addWidget(self.search)
        layout.addWidget(self.tree)
        self._groups: dict[str, QTreeWidgetItem] = {}
        self._items: dict[str, QTreeWidgetItem] = {}
        self._populate()
        self.search.textChanged.connect(self.set_filter)
        self.search.returnPressed.connect(self._activate_first)
        self.search.installEventFilter(self)
        self.tree.activated_block.connect(self.block_activated)
        self.setFocusProxy(self.search)

    def _populate(self) -> None:
        bold = QFont(self.tree.font())
        bold.setBold(True)
        dark = palette_is_dark(self.palette())
        by_category: dict[str, list[BlockSpec]] = {c: [] for c in CATEGORIES}
        for spec in CATALOGUE.values():
            by_category.setdefault(spec.category, []).append(spec)
        for category, specs in by_category.items():
            group = QTreeWidgetItem(self.tree, [category])
            group.setFont(0, bold)
            group.setFlags(Qt.ItemFlag.ItemIsEnabled)
            group.setData(0, TYPE_ROLE, None)
            self._groups[category] = group
            for spec in specs:
                item = QTreeWidgetItem(group, [spec.type])
                item.setData(0, TYPE_ROLE, spec.type)
                item.setData(0, SEARCH_ROLE, " ".join(
                    (spec.type, spec.doc, spec.category)).lower())
                item.setToolTip(0, block_tooltip(spec))
                item.setIcon(0, category_icon(category, dark))
                item.setFlags(Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable
                              | Qt.ItemFlag.ItemIsDragEnabled)
                self._items[spec.type] = item
            group.setExpanded(True)

    # ---- search -----------------------------------------------------------------------

    def set_filter(self, text: str) -> None:
        """Show blocks whose name, doc or family contains every word of ``text``."""
        if self.search.text() != text:
            self.search.setText(text)  # re-enters through textChanged
            return
        words = text.lower().split()
        for group in self._groups.values():
            shown = 0
            for i in range(group.childCount()):
                item = group.child(i)
                hay = item.data(0, SEARCH_ROLE)
                hit = all(w in hay for w in words)
                item.setHidden(not hit)
                shown += hit
            group.setHidden(shown == 0)
            if words and shown:
                group.setExpanded(True)
        current = self.tree.currentItem()
        if words and (current is None or current.isHidden() or not current.data(0, TYPE_ROLE)):
            first = self._first_visible()
            if first is not None:
                self.tree.setCurrentItem(first)

    def visible_blocks(self) -> list[str]:
        """Type names currently shown, in display order."""
        return [self._groups[c].child(i).data(0, TYPE_ROLE)
                for c in self._groups if not self._groups[c].isHidden()
                for i in range(self._groups[c].childCount())
                if not self._groups[c].child(i).isHidden()]

    def item_for(self, type_name: str) -> QTreeWidgetItem:
        return self._items[type_name]

    def _first_visible(self) -> QTreeWidgetItem | None:
        names = self.visible_blocks()
        return self._items[names[0]] if names else None

    def _activate_first(self) -> None:
        item = self.tree.currentItem()
        if item is None or item.isHidden() or not item.data(0, TYPE_ROLE):
            item = self._first_visible()
        if item is not None:
            self.block_activated.emit(item.data(0, TYPE_ROLE))

    def eventFilter(self, watched, event: QEvent) -> bool:
        """Down/Up in the search box move through the list without leaving the box."""
        if watched is self.search and event.type() == QEvent.Type.KeyPress:
            key = event.key()
            if key in (Qt.Key.Key_Down, Qt.Key.Key_Up):
                self._step(1 if key == Qt.Key.Key_Down else -1)
                return True
            if key == Qt.Key.Key_Escape and self.search.text():
                self.search.clear()
                return True
        return super().eventFilter(watched, event)

    def _step(self, delta: int) -> None:
        names = self.visible_blocks()
        if not names:
            return
        current = self.tree.currentItem()
        name = current.data(0, TYPE_ROLE) if current is not None else None
        i = names.index(name) + delta if name in names else (0 if delta > 0 else -1)
        item = self._items[names[max(0, min(i, len(names) - 1))]]
        self.tree.setCurrentItem(item)
        self.tree.scrollToItem(item)

    # ---- theme ------------------------------------------------------------------------

    def changeEvent(self, event: QEvent) -> None:
        if event.type() == QEvent.Type.PaletteChange:
            dark = palette_is_dark(self.palette())
            for type_name, item in self._items.items():
                item.setIcon(0, category_icon(CATALOGUE[type_name].category, dark))
        super().changeEvent(event)
