"""The block palette: every catalogue block, grouped by family, searchable, draggable.

It reads ``engine.blocks.CATALOGUE`` (torch-free) so a new block appears here without
touching this file. Dropping an entry on the canvas hands over only the type name
(mime type :data:`MIME_TYPE`); what happens next is the canvas's and the window's
business.

After the catalogue come two sections of blocks made of blocks (SPEC §9): "This
design" (the open design's own blocks, :meth:`Palette.set_design_blocks`) and "My
blocks" (the personal library, :meth:`Palette.set_library_blocks`). The palette is told
their specs and knows nothing of documents or files: a library entry's drag also
carries :data:`LIBRARY_MIME` and its activation is :attr:`Palette.library_block_activated`,
because using one first copies its definition into the design, which is the window's
business.
"""

from __future__ import annotations

import html
from collections.abc import Iterable

from PySide6.QtCore import QEvent, QMimeData, QPoint, QRectF, Qt, Signal
from PySide6.QtGui import QColor, QDrag, QFont, QKeyEvent, QPainter, QPixmap
from PySide6.QtWidgets import (
    QAbstractItemView,
    QLineEdit,
    QMenu,
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
LIBRARY_MIME = "application/x-convas-library-block"
TYPE_ROLE = Qt.ItemDataRole.UserRole  # block type name on block items, None on groups
SEARCH_ROLE = Qt.ItemDataRole.UserRole + 1  # lower-cased text the search looks in
SECTION_ROLE = Qt.ItemDataRole.UserRole + 2  # CATALOGUE_SECTION, DESIGN or LIBRARY
CATEGORY_ROLE = Qt.ItemDataRole.UserRole + 3  # the family whose colour the entry has

CATALOGUE_SECTION = "catalogue"
DESIGN = "This design"
LIBRARY = "My blocks"
DESIGN_HINT = "Select blocks and press Ctrl+G to make one"
LIBRARY_HINT = "Right-click a block of this design → Save to Library"


def block_mime_data(type_name: str, from_library: bool = False) -> QMimeData:
    """What a palette drag carries: the type name as utf-8 under :data:`MIME_TYPE`.

    Plain text is added too, so dropping on a text field writes the name. A library
    block carries its name under :data:`LIBRARY_MIME` as well, so whoever takes the drop
    knows to bring its definition into the design first.
    """
    mime = QMimeData()
    mime.setData(MIME_TYPE, type_name.encode("utf-8"))
    if from_library:
        mime.setData(LIBRARY_MIME, type_name.encode("utf-8"))
    mime.setText(type_name)
    return mime


def library_block_name(mime: QMimeData) -> str | None:
    """The library block a drag carries, or None when it is no library drag."""
    if not mime.hasFormat(LIBRARY_MIME):
        return None
    return bytes(mime.data(LIBRARY_MIME).data()).decode("utf-8", errors="replace") or None


def block_tooltip(spec: BlockSpec, where: str = "") -> str:
    """Rich-text tooltip: the catalogue's doc, the inputs it takes and its parameters,
    and ``where`` the block comes from when it is no catalogue block."""
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
    if where:
        parts.append(f"<p><i>{html.escape(where)}</i></p>")
    return "<qt>" + "".join(parts) + "</qt>"


class BlockTree(QTreeWidget):
    """The tree itself: drags carry the type name, Enter activates like a double-click."""

    activated_block = Signal(str)          # a catalogue block or one of this design's
    activated_library_block = Signal(str)  # a block of the personal library

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
        self.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.itemDoubleClicked.connect(self._on_double_click)

    def mimeTypes(self) -> list[str]:
        return [MIME_TYPE, LIBRARY_MIME]

    def mimeData(self, items: list[QTreeWidgetItem]) -> QMimeData | None:
        blocks = [i for i in items if i.data(0, TYPE_ROLE)]
        return _item_mime(blocks[0]) if blocks else None

    def startDrag(self, supported: Qt.DropAction) -> None:
        item = self.currentItem()
        type_name = item.data(0, TYPE_ROLE) if item is not None else None
        if not type_name:
            return
        drag = QDrag(self)
        drag.setMimeData(_item_mime(item))
        pixmap = self._drag_pixmap(type_name, _category(item))
        drag.setPixmap(pixmap)
        drag.setHotSpot(QPoint(int(pixmap.deviceIndependentSize().width() / 2), 12))
        drag.exec(Qt.DropAction.CopyAction)

    def _drag_pixmap(self, type_name: str, category: str) -> QPixmap:
        """A small block-like chip in the category colour, so the user sees what drops."""
        dark = palette_is_dark(self.palette())
        color = category_color(category, dark)
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

    def activate(self, item: QTreeWidgetItem) -> bool:
        """Emit the activation of a block entry (False for a header or a hint)."""
        type_name = item.data(0, TYPE_ROLE)
        if not type_name:
            return False
        if item.data(0, SECTION_ROLE) == LIBRARY:
            self.activated_library_block.emit(type_name)
        else:
            self.activated_block.emit(type_name)
        return True

    def keyPressEvent(self, event: QKeyEvent) -> None:
        if event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter):
            item = self.currentItem()
            if item is not None and self.activate(item):
                return
        super().keyPressEvent(event)

    def _on_double_click(self, item: QTreeWidgetItem, _column: int) -> None:
        if not self.activate(item) and item.childCount():
            item.setExpanded(not item.isExpanded())


def _item_mime(item: QTreeWidgetItem) -> QMimeData:
    return block_mime_data(item.data(0, TYPE_ROLE), item.data(0, SECTION_ROLE) == LIBRARY)


def _category(item: QTreeWidgetItem) -> str:
    """The family an entry is drawn in: its section for blocks made of blocks."""
    return item.data(0, CATEGORY_ROLE) or ""


class Palette(QWidget):
    """Search box over a tree of blocks; emits :attr:`block_activated` on double-click/Enter
    (:attr:`library_block_activated` for a "My blocks" entry). Right-clicking a block made
    of blocks offers to save it to the library ("This design") or to remove it from
    there ("My blocks"): the palette asks nobody, it only emits the request."""

    block_activated = Signal(str)
    library_block_activated = Signal(str)
    save_to_library_requested = Signal(str)
    remove_from_library_requested = Signal(str)

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
        self._section_items: dict[str, dict[str, QTreeWidgetItem]] = {DESIGN: {}, LIBRARY: {}}
        self._populate()
        self.search.textChanged.connect(self.set_filter)
        self.search.returnPressed.connect(self._activate_first)
        self.search.installEventFilter(self)
        self.tree.activated_block.connect(self.block_activated)
        self.tree.activated_library_block.connect(self.library_block_activated)
        self.tree.customContextMenuRequested.connect(self._show_menu)
        self.setFocusProxy(self.search)

    def _bold(self) -> QFont:
        bold = QFont(self.tree.font())
        bold.setBold(True)
        return bold

    def _populate(self) -> None:
        dark = palette_is_dark(self.palette())
        by_category: dict[str, list[BlockSpec]] = {c: [] for c in CATEGORIES}
        for spec in CATALOGUE.values():
            by_category.setdefault(spec.category, []).append(spec)
        for category, specs in by_category.items():
            group = self._group(category)
            for spec in specs:
                where = f"Plug-in block from {spec.source}" if spec.source != "built-in" else ""
                self._items[spec.type] = self._entry(group, spec, CATALOGUE_SECTION, where,
                                                     dark)
            group.setExpanded(True)
        for section, hint in ((DESIGN, DESIGN_HINT), (LIBRARY, LIBRARY_HINT)):
            group = self._group(section)
            self._hint(group, hint)
            group.setExpanded(True)

    def _group(self, title: str) -> QTreeWidgetItem:
        group = QTreeWidgetItem(self.tree, [title])
        group.setFont(0, self._bold())
        group.setFlags(Qt.ItemFlag.ItemIsEnabled)
        group.setData(0, TYPE_ROLE, None)
        self._groups[title] = group
        return group

    def _entry(self, group: QTreeWidgetItem, spec: BlockSpec, section: str, where: str,
               dark: bool) -> QTreeWidgetItem:
        item = QTreeWidgetItem(group, [spec.type])
        item.setData(0, TYPE_ROLE, spec.type)
        item.setData(0, SECTION_ROLE, section)
        item.setData(0, CATEGORY_ROLE, section if section in (DESIGN, LIBRARY) else spec.category)
        item.setData(0, SEARCH_ROLE, " ".join((spec.type, spec.doc, spec.category)).lower())
        item.setToolTip(0, block_tooltip(spec, where))
        item.setIcon(0, category_icon(_category(item), dark))
        item.setFlags(Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable
                      | Qt.ItemFlag.ItemIsDragEnabled)
        return item

    def _hint(self, group: QTreeWidgetItem, text: str) -> None:
        """A grey line in an empty section saying how to fill it; never a block."""
        hint = QTreeWidgetItem(group, [text])
        hint.setData(0, TYPE_ROLE, None)
        hint.setFlags(Qt.ItemFlag.NoItemFlags)
        font = QFont(self.tree.font())
        font.setItalic(True)
        hint.setFont(0, font)
        hint.setToolTip(0, text)

    # ---- blocks made of blocks -----------------------------------------------------------

    def set_design_blocks(self, specs: Iterable[BlockSpec]) -> None:
        """Show the open design's own blocks (its ``"blocks"``) under "This design"."""
        self._fill(DESIGN, specs, DESIGN_HINT,
                   "A block of this design, saved in its file. Right-click → Save to Library "
                   "to use it in other designs.")

    def set_library_blocks(self, specs: Iterable[BlockSpec]) -> None:
        """Show the personal library's blocks under "My blocks"; each spec's ``source`` is
        the file it was read from."""
        self._fill(LIBRARY, specs, LIBRARY_HINT, None)

    def _fill(self, section: str, specs: Iterable[BlockSpec], hint: str,
              where: str | None) -> None:
        group = self._groups[section]
        current = self.tree.currentItem()
        keep = ((current.data(0, SECTION_ROLE), current.data(0, TYPE_ROLE))
                if current is not None else None)
        if current is not None and current.parent() is group:
            self.tree.setCurrentItem(None)
        group.takeChildren()
        items = self._section_items[section] = {}
        dark = palette_is_dark(self.palette())
        for spec in sorted(specs, key=lambda s: s.type.lower()):
            text = where if where is not None else (
                f"From your library ({spec.source}). Using it copies its definition into "
                f"the design, so the design file stays complete.")
            items[spec.type] = self._entry(group, spec, section, text, dark)
        if not items:
            self._hint(group, hint)
        if keep is not None and keep[0] == section and keep[1] in items:
            self.tree.setCurrentItem(items[keep[1]])
        self.set_filter(self.search.text())

    def design_blocks(self) -> list[str]:
        return list(self._section_items[DESIGN])

    def library_blocks(self) -> list[str]:
        return list(self._section_items[LIBRARY])

    def section_hint(self, section: str) -> str | None:
        """The hint an empty section shows (None when it lists blocks)."""
        group = self._groups[section]
        if group.childCount() == 1 and not group.child(0).data(0, TYPE_ROLE):
            return group.child(0).text(0)
        return None

    def menu_for(self, item: QTreeWidgetItem | None) -> QMenu | None:
        """The context menu of an entry of "This design" or "My blocks" (None elsewhere)."""
        if item is None or not item.data(0, TYPE_ROLE):
            return None
        name, section = item.data(0, TYPE_ROLE), item.data(0, SECTION_ROLE)
        menu = QMenu(self)
        if section == DESIGN:
            menu.addAction("Add to Design", lambda: self.block_activated.emit(name))
            menu.addAction("Save to Library…", lambda: self.save_to_library_requested.emit(name))
        elif section == LIBRARY:
            menu.addAction("Add to Design", lambda: self.library_block_activated.emit(name))
            menu.addAction("Remove from Library…",
                           lambda: self.remove_from_library_requested.emit(name))
        else:
            return None
        return menu

    def _show_menu(self, pos: QPoint) -> None:
        menu = self.menu_for(self.tree.itemAt(pos))
        if menu is not None:
            menu.exec(self.tree.viewport().mapToGlobal(pos))
            menu.deleteLater()

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
                if hay is None:  # an empty section's hint: shown only when not searching
                    item.setHidden(bool(words))
                    shown += not words
                    continue
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

    def _visible_items(self) -> list[QTreeWidgetItem]:
        return [g.child(i) for g in self._groups.values() if not g.isHidden()
                for i in range(g.childCount())
                if not g.child(i).isHidden() and g.child(i).data(0, TYPE_ROLE)]

    def visible_blocks(self) -> list[str]:
        """Type names currently shown, in display order (sections included)."""
        return [i.data(0, TYPE_ROLE) for i in self._visible_items()]

    def item_for(self, type_name: str, section: str = CATALOGUE_SECTION) -> QTreeWidgetItem:
        """The entry of ``type_name``: a catalogue block, or one of ``section``
        (:data:`DESIGN` or :data:`LIBRARY`)."""
        if section == CATALOGUE_SECTION:
            return self._items[type_name]
        return self._section_items[section][type_name]

    def _first_visible(self) -> QTreeWidgetItem | None:
        items = self._visible_items()
        return items[0] if items else None

    def _activate_first(self) -> None:
        item = self.tree.currentItem()
        if item is None or item.isHidden() or not item.data(0, TYPE_ROLE):
            item = self._first_visible()
        if item is not None:
            self.tree.activate(item)

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
        items = self._visible_items()
        if not items:
            return
        current = self.tree.currentItem()
        i = items.index(current) + delta if current in items else (0 if delta > 0 else -1)
        item = items[max(0, min(i, len(items) - 1))]
        self.tree.setCurrentItem(item)
        self.tree.scrollToItem(item)

    # ---- theme ------------------------------------------------------------------------

    def changeEvent(self, event: QEvent) -> None:
        if event.type() == QEvent.Type.PaletteChange:
            dark = palette_is_dark(self.palette())
            for group in self._groups.values():
                for i in range(group.childCount()):
                    item = group.child(i)
                    if item.data(0, TYPE_ROLE):
                        item.setIcon(0, category_icon(_category(item), dark))
        super().changeEvent(event)
