"""The palette's "This design" and "My blocks" sections wired to the window (SPEC §9).

:func:`install_block_library` is the one entry point: it keeps "This design" in step
with the document's blocks, lists the personal library (``engine.block_library``) under
"My blocks", and adds Save Block to Library… to the Edit menu. Using a library block
copies its definition (and those it uses) into the design before the instance is
added, both as one undo step, so a saved design never needs the library to open.

Dropping a library block on the canvas is taken here, before the canvas sees it: the
canvas would hand the name to the editor, which only adds blocks the design already
defines.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import QEvent, QObject
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QMenu, QMessageBox

from engine import block_library as lib
from widgets.palette import library_block_name

if TYPE_CHECKING:
    from .mainwindow import MainWindow

STATUS_MS = 8000
Buttons = QMessageBox.StandardButton


def install_block_library(window: MainWindow) -> BlockLibraryActions:
    """Wire the palette's block sections and the library actions into ``window`` (once:
    a second call returns the first wiring); kept as ``window.block_library``, a child
    of the window."""
    existing = getattr(window, "block_library", None)
    if isinstance(existing, BlockLibraryActions):
        return existing
    window.block_library = BlockLibraryActions(window)
    return window.block_library


class BlockLibraryActions(QObject):
    """Keeps the palette's sections current and carries out what they request."""

    def __init__(self, window: MainWindow) -> None:
        super().__init__(window)
        self.window, self.doc, self.palette = window, window.doc, window.palette
        self.canvas = window.canvas
        self.entries: dict[str, lib.LibraryBlock] = {}
        self._design_key: tuple | None = None
        self.palette.library_block_activated.connect(lambda n: self.use_block(n))
        self.palette.save_to_library_requested.connect(lambda n: self.save_block(n))
        self.palette.remove_from_library_requested.connect(lambda n: self.remove_block(n))
        self.doc.analysis_changed.connect(self.refresh_design)
        self.doc.reset.connect(self.refresh_design)
        self.canvas.viewport().installEventFilter(self)
        self.save_action = QAction("Save Block to &Library…", window)
        self.save_action.setStatusTip("Keep the selected block made of blocks in your library, "
                                      "to use it in other designs")
        self.save_action.triggered.connect(lambda: self.save_selected())
        menu = _menu(window, "Block") or _menu(window, "Edit")
        if menu is not None:
            menu.addSeparator()
            menu.addAction(self.save_action)
        self.refresh_library()
        self.refresh_design()

    # ---- the palette's sections -----------------------------------------------------

    def refresh_design(self) -> None:
        """List the design's blocks under "This design" (only when they changed: this
        runs after every edit)."""
        blocks = self.doc.graph.blocks
        key = tuple((n, b.doc, repr(b.declarations), len(b.input_ids)) for n, b in blocks.items())
        if key != self._design_key:
            self._design_key = key
            self.palette.set_design_blocks(b.spec for b in blocks.values())

    def refresh_library(self) -> list[str]:
        """Read the library folder again and list it under "My blocks"; returns the
        problems (files left out), also shown in the status bar."""
        found = lib.read_library()
        self.entries = found.blocks
        self.palette.set_library_blocks(e.spec for e in found.blocks.values())
        if found.problems:
            self._status(f"Library: {len(found.problems)} file(s) left out: "
                         + "; ".join(found.problems), 30_000)
        return found.problems

    # ---- save and remove ------------------------------------------------------------

    def save_selected(self) -> bool:
        """Save the block of the one selected instance (Edit → Save Block to Library…)."""
        g = self.doc.graph
        chosen = [n for n in self.canvas.selected_nodes() if n in g]
        names = {g.type_of(n) for n in chosen if g.type_of(n) in g.blocks}
        if len(chosen) != 1 or len(names) != 1:
            self._status("Select one block made of blocks (an instance of one of this "
                         "design's blocks) to save it to your library")
            return False
        return self.save_block(names.pop())

    def save_block(self, name: str) -> bool:
        """Write the design's block ``name`` to the library, asking before it replaces a
        different library block of that name."""
        path = lib.library_path(name)
        if path.exists():
            same = False
            try:
                old = lib.read_block_file(path)
                same = not lib.conflicts(self.doc.graph, old) and set(old.definitions) == set(
                    lib.definition_with_dependencies(self.doc.graph.blocks, name))
            except lib.LibraryError:
                pass  # an unreadable file: replacing it is the fix, still ask
            if same:
                self._status(f"{name} is in your library already, unchanged")
                return True
            if not self._ask("Replace library block", f"Your library already has a block "
                             f"{name}, different from this design's. Replace it? Designs "
                             f"that use it keep their own copy.", "Replace"):
                return False
        try:
            written = lib.save_to_library(self.doc.graph, name)
        except lib.LibraryError as exc:
            QMessageBox.warning(self.window, "Save to library", str(exc))
            return False
        self.refresh_library()
        self._status(f"Saved {name} to your library ({written})")
        return True

    def remove_block(self, name: str) -> bool:
        """Delete ``name`` from the library, after asking."""
        if not self._ask("Remove library block", f"Remove {name} from your library? Designs "
                         f"that use it keep their own copy.", "Remove"):
            return False
        try:
            gone = lib.remove_from_library(name)
        except lib.LibraryError as exc:
            QMessageBox.warning(self.window, "Remove from library", str(exc))
            self.refresh_library()
            return False
        self.refresh_library()
        self._status(f"Removed {name} from your library ({gone})")
        return True

    # ---- using a library block ------------------------------------------------------

    def use_block(self, name: str, pos: tuple[float, float] | None = None) -> str | None:
        """Add an instance of the library's ``name``: at ``pos`` (a drop), else below the
        one selected block and wired from it, else in the middle of the view. Its
        definitions join the design's first; both are one undo step. Returns the new
        instance's id, or None when nothing was added (the status bar says why)."""
        if self.canvas.read_only:
            self._status("The design cannot be edited now (a training run is using it)")
            return None
        if self.doc.scope:
            self._status(f"Go back up to the design (the breadcrumb) to add {name} from "
                         f"your library")
            return None
        entry = self._fresh_entry(name)
        if entry is None:
            return None
        choice = self._resolve_conflicts(entry)
        if choice is None:
            return None
        try:
            new = lib.with_definitions(self.doc.graph, entry, choice)
        except lib.LibraryError as exc:
            QMessageBox.warning(self.window, "Add library block", str(exc))
            return None
        stack = self.doc.undo_stack
        stack.beginMacro(f"Add {name} from the library")
        try:
            self.doc.replace_graph(new, f"Bring {name}'s definition into the design")
            selected = [n for n in self.canvas.selected_nodes() if n in self.doc.graph]
            if pos is None and len(selected) == 1:
                node = self.doc.add_block_after(name, selected[0])
            else:
                if pos is None:
                    c = self.canvas.mapToScene(self.canvas.viewport().rect().center())
                    pos = (c.x(), c.y())
                node = self.doc.add_block(name, pos)
        finally:
            stack.endMacro()
        self.canvas.select([node])
        self.canvas.reveal(node)
        return node

    def _fresh_entry(self, name: str) -> lib.LibraryBlock | None:
        """The library's ``name`` as its file says now (it may have changed on disk)."""
        entry = self.entries.get(name)
        try:
            if entry is None:
                raise lib.LibraryError(f"your library has no block {name!r} any more")
            return lib.read_block_file(entry.path)
        except lib.LibraryError as exc:
            QMessageBox.warning(self.window, "Add library block", str(exc))
            self.refresh_library()
            return None

    def _resolve_conflicts(self, entry: lib.LibraryBlock) -> lib.Conflict | None:
        """"keep" or "replace" for the design's blocks defined differently from the
        library's (asking the user when there are any), None to cancel."""
        differing = lib.conflicts(self.doc.graph, entry)
        if not differing:
            return "keep"
        names = ", ".join(differing)
        box = QMessageBox(QMessageBox.Icon.Question, "Block already in this design",
                          f"This design already has {names}, defined differently from your "
                          f"library's. Use the library's definition (every instance in this "
                          f"design changes), or keep the design's?", parent=self.window)
        box.setObjectName("libraryConflict")
        replace = box.addButton("Use the Library's", QMessageBox.ButtonRole.AcceptRole)
        keep = box.addButton("Keep the Design's", QMessageBox.ButtonRole.AcceptRole)
        box.addButton(Buttons.Cancel)
        box.setDefaultButton(keep)
        box.exec()
        clicked = box.clickedButton()
        if clicked is replace:
            return "replace"
        if clicked is keep:
            self._status(f"Kept this design's own {names}: the new instance uses it")
            return "keep"
        return None

    # ---- drops on the canvas --------------------------------------------------------

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802
        """Take a library block dropped on the canvas (the canvas shows the ghost while
        it hovers, as for any block)."""
        if event.type() == QEvent.Type.Drop and watched is self.canvas.viewport():
            name = library_block_name(event.mimeData())
            if name is not None:
                self.canvas.cancel_interaction()
                if self.canvas.read_only:
                    event.ignore()
                    return True
                event.acceptProposedAction()
                p = self.canvas.scene_pos(event.position())
                self.use_block(name, (p.x(), p.y()))
                return True
        return super().eventFilter(watched, event)

    # ---- helpers --------------------------------------------------------------------

    def _ask(self, title: str, text: str, yes: str) -> bool:
        box = QMessageBox(QMessageBox.Icon.Question, title, text, parent=self.window)
        box.setObjectName("libraryQuestion")
        ok = box.addButton(yes, QMessageBox.ButtonRole.AcceptRole)
        box.addButton(Buttons.Cancel)
        box.setDefaultButton(Buttons.Cancel)
        box.exec()
        return box.clickedButton() is ok

    def _status(self, text: str, ms: int = STATUS_MS) -> None:
        self.window.statusBar().showMessage(text, ms)


def _menu(window: MainWindow, title: str) -> QMenu | None:
    """The menu bar's menu called ``title`` (ignoring the & of its shortcut)."""
    for action in window.menuBar().actions():
        menu = action.menu()
        if menu is not None and action.text().replace("&", "") == title:
            return menu
    return None
