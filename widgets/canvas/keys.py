"""Keyboard shortcuts of the canvas, as a table from key to intent.

Shortcuts that edit (Delete, paste, duplicate) are refused in read-only mode, the
others (select, copy, frame) still work. When a window action owns the same
shortcut, Qt gives it the key first and this handler never sees it; both paths
end in the same document call.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import Qt
from PySide6.QtGui import QKeyEvent, QKeySequence

if TYPE_CHECKING:
    from .view import GraphCanvas

Key = Qt.Key
Std = QKeySequence.StandardKey


def _delete(canvas: GraphCanvas) -> None:
    nodes, edges = canvas.selected_nodes(), canvas.selected_edges()
    if not canvas.read_only and (nodes or edges):
        canvas.delete_requested.emit(nodes, [list(e) for e in edges])


def _paste(canvas: GraphCanvas) -> None:
    if not canvas.read_only:
        p = canvas.paste_position()
        canvas.paste_requested.emit(p.x(), p.y())


def _duplicate(canvas: GraphCanvas) -> None:
    ids = canvas.selected_nodes()
    if ids and not canvas.read_only:
        canvas.duplicate_requested.emit(ids)


def _copy(canvas: GraphCanvas) -> None:
    ids = canvas.selected_nodes()
    if ids:
        canvas.copy_requested.emit(ids)


def _escape(canvas: GraphCanvas) -> None:
    """Cancel a gesture, else clear the selection, else leave the block body shown."""
    if canvas.has_interaction():
        canvas.cancel_interaction()
    elif canvas.selected_nodes() or canvas.selected_edges():
        canvas.select([])
    else:
        canvas.up_requested.emit()


def _space(canvas: GraphCanvas, event: QKeyEvent) -> None:
    if not event.isAutoRepeat():
        canvas.set_space_held(True)


CONTROL = Qt.KeyboardModifier.ControlModifier
PLAIN_KEYS = {
    Key.Key_Delete: _delete,
    Key.Key_Backspace: _delete,
    Key.Key_F: lambda c: c.frame_selection(),
    Key.Key_Escape: _escape,
}
CONTROL_KEYS = {
    Key.Key_A: lambda c: c.select(list(c.scene_.nodes)),
    Key.Key_C: _copy,
    Key.Key_V: _paste,
    Key.Key_D: _duplicate,
    Key.Key_0: lambda c: c.fit_all(),
    Key.Key_Plus: lambda c: c.zoom_by(1.25),
    Key.Key_Equal: lambda c: c.zoom_by(1.25),
    Key.Key_Minus: lambda c: c.zoom_by(0.8),
}


def handle_key(canvas: GraphCanvas, event: QKeyEvent) -> bool:
    """Run the canvas' action for this key press; False when the key is not ours."""
    key = event.key()
    mods = event.modifiers() & ~Qt.KeyboardModifier.KeypadModifier
    if key == Key.Key_Space and mods == Qt.KeyboardModifier.NoModifier:
        _space(canvas, event)
        return True
    if mods == CONTROL and key in CONTROL_KEYS:
        CONTROL_KEYS[key](canvas)
        return True
    if event.matches(Std.SelectAll):
        CONTROL_KEYS[Key.Key_A](canvas)
        return True
    if mods in (Qt.KeyboardModifier.NoModifier,) and key in PLAIN_KEYS:
        PLAIN_KEYS[key](canvas)
        return True
    return False
