"""The main window: canvas in the centre, palette, inspector, summary and problems in
docks, menus and toolbar, and everything that protects the user's work (prompts
before losing it, crash recovery, atomic saves)."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QSettings, Qt
from PySide6.QtGui import QAction, QCloseEvent, QKeySequence
from PySide6.QtWidgets import (
    QApplication,
    QDialog,
    QDockWidget,
    QFileDialog,
    QLabel,
    QMainWindow,
    QMessageBox,
)

from engine import Graph, GraphError
from engine.layout import layered_layout
from engine.plugins import describe_problems
from engine.plugins import problems as plugin_problems
from widgets.canvas import GraphCanvas
from widgets.inspector import Inspector
from widgets.palette import Palette
from widgets.problems import ProblemsList
from widgets.style import apply_theme
from widgets.summary import SummaryTable

from . import dock_layout
from .anchor_fit import open_anchor_fit
from .block_library_actions import install_block_library
from .document import Document
from .editor import Editor
from .predict_dialog import PredictDialog
from .recovery import Recovery
from .templates import template_files
from .training_dock import TrainingDock

FILE_FILTER = "Convas graphs (*.convas.json *.json);;All files (*)"
MAX_RECENT = 8


class MainWindow(QMainWindow):
    def __init__(self, settings: QSettings | None = None, recovery_dir: str | None = None,
                 autosave_ms: int = 30_000) -> None:
        super().__init__()
        self.settings = settings or QSettings()
        self.setWindowTitle("Convas")
        self.resize(1600, 1000)
        self.doc = Document(self)
        self.canvas = GraphCanvas(self)
        self.setCentralWidget(self.canvas)
        self.palette = Palette(self)
        self.inspector = Inspector(self)
        self.summary = SummaryTable(self)
        self.problems = ProblemsList(self)
        self.training = TrainingDock(self.doc, self.canvas, self)
        self._docks = {}
        for title, widget, area in (("Blocks", self.palette, Qt.DockWidgetArea.LeftDockWidgetArea),
                                    ("Inspector", self.inspector,
                                     Qt.DockWidgetArea.RightDockWidgetArea),
                                    ("Layers", self.summary,
                                     Qt.DockWidgetArea.BottomDockWidgetArea),
                                    ("Problems", self.problems,
                                     Qt.DockWidgetArea.BottomDockWidgetArea),
                                    ("Training", dock_layout.scrolling(self.training),
                                     Qt.DockWidgetArea.BottomDockWidgetArea)):
            dock = QDockWidget(title, self)
            dock.setObjectName(f"dock_{title.lower()}")
            dock.setWidget(widget)
            self.addDockWidget(area, dock)
            self._docks[title] = dock
        self.tabifyDockWidget(self._docks["Layers"], self._docks["Problems"])
        self.tabifyDockWidget(self._docks["Problems"], self._docks["Training"])
        self._docks["Layers"].raise_()
        dock_layout.default_sizes(self, self._docks)
        self.training_room = dock_layout.TrainingRoom(self, self._docks["Training"],
                                                      self.settings)
        self.editor = Editor(self.doc, self.canvas, self.inspector, self.summary, self.problems)
        self.palette.block_activated.connect(self.editor.add_block_below_selection)
        self.totals = QLabel()
        self.statusBar().addPermanentWidget(self.totals)
        self.doc.analysis_changed.connect(self._update_status)
        self.doc.reset.connect(self._update_status)
        self.doc.training_changed.connect(self._update_status)
        self.doc.dirty_changed.connect(self._update_title)
        self.doc.path_changed.connect(self._update_title)
        self.doc.reset.connect(self._update_title)
        self.recovery = Recovery(self.doc, recovery_dir, interval_ms=autosave_ms)
        self._build_actions()
        install_block_library(self)  # palette sections, Save Block to Library (SPEC §9)
        self._training_now = False  # set by _on_training_running
        self._update_action_states()
        self._restore_layout()
        self._update_title()
        self._update_status()
        if plugin_problems():  # plug-in files that did not load: which, and why
            self.statusBar().showMessage(describe_problems(plugin_problems()), 60_000)

    # ---- actions ----------------------------------------------------------------------

    def _action(self, text: str, slot, shortcut=None, menu=None) -> QAction:
        action = QAction(text, self)
        if shortcut is not None:
            keys = shortcut if isinstance(shortcut, list) else [shortcut]
            action.setShortcuts([QKeySequence(k) for k in keys])
        action.triggered.connect(slot)
        if menu is not None:
            menu.addAction(action)
        return action

    def _build_actions(self) -> None:
        K = QKeySequence.StandardKey
        bar = self.menuBar()
        file_menu = bar.addMenu("&File")
        self.new_action = self._action("&New", self.new_document, K.New, file_menu)
        templates = file_menu.addMenu("New from &Template")
        for f in template_files():
            action = QAction(self._template_title(f), self)
            action.triggered.connect(lambda _=False, f=f: self.new_from_template(f))
            templates.addAction(action)
        self.open_action = self._action("&Open…", self.ask_open, K.Open, file_menu)
        self.recent_menu = file_menu.addMenu("Open &Recent")
        self._fill_recent()
        self._action("&Import… (ONNX or PyTorch)", lambda: self.import_model(), None, file_menu)
        file_menu.addSeparator()
        self.save_action = self._action("&Save", self.save, K.Save, file_menu)
        self.save_as_action = self._action("Save &As…", self.save_as, "Ctrl+Shift+S", file_menu)
        file_menu.addSeparator()
        export = file_menu.addMenu("&Export")
        self._export_menu = export
        self._exporting = False
        self._action("&ONNX…", lambda: self.export("onnx"), None, export)
        self._action("&PyTorch .py…", lambda: self.export("pytorch"), None, export)
        self._action("&Checkpoint (trained weights)…", lambda: self.export("checkpoint"), None,
                     export)
        self._action("&Predict on Images…", lambda: self.predict_images(), None, file_menu)
        file_menu.addSeparator()
        self._action("&Quit", self.close, K.Quit, file_menu)

        edit = bar.addMenu("&Edit")
        self.undo_action = self.doc.undo_stack.createUndoAction(self, "&Undo")
        self.undo_action.setShortcuts([QKeySequence("Ctrl+Z")])
        self.redo_action = self.doc.undo_stack.createRedoAction(self, "&Redo")
        self.redo_action.setShortcuts([QKeySequence("Ctrl+Shift+Z"), QKeySequence("Ctrl+Y")])
        edit.addAction(self.undo_action)
        edit.addAction(self.redo_action)
        edit.addSeparator()
        copy_action = self._action("&Copy", lambda: self.editor.copy(), "Ctrl+C", edit)
        # edits that a training run locks, with undo and redo (see _on_training_running)
        self._locked_actions = [
            self._action("&Paste", lambda: self.editor.paste(), "Ctrl+V", edit),
            self._action("&Duplicate", lambda: self.editor.duplicate(), "Ctrl+D", edit),
            self._action("De&lete", self.editor.delete_selection, ["Delete", "Backspace"],
                         edit)]
        edit.addSeparator()
        self._locked_actions.append(self._action(
            "Make &Fully Convolutional", lambda: self.make_fully_convolutional(), None, edit))
        self._locked_actions.append(self._action(   # detection (designer.anchor_fit)
            "Fit &Anchors to Dataset…", lambda: open_anchor_fit(self), None, edit))
        edit.addSeparator()   # fine-tuning (SPEC §8): blocks whose weights training keeps
        self._locked_actions += [
            self._action("Free&ze / Unfreeze Selection", self.editor.toggle_freeze_selection,
                         None, edit),
            self._action("Freeze Up to &Here", self.editor.freeze_up_to_selection, None, edit),
            self._action("U&nfreeze All", self.doc.unfreeze_all, None, edit)]
        edit.addSeparator()   # blocks made of blocks (SPEC §9, designer.block_scope)
        self._locked_actions += [
            self._action("&Group…", lambda: self.editor.group_selection(self), "Ctrl+G", edit),
            self._action("Ungrou&p", self.editor.ungroup_selection, "Ctrl+Shift+G", edit)]
        edit_block = self._action("Edit &Block", lambda: self.editor.open_block(), "Ctrl+E",
                                  edit)
        # acting on the selected blocks: greyed out while none is (_update_action_states)
        named = {a.text(): a for a in self._locked_actions}
        self._selection_actions = {edit_block, copy_action} | {named[t] for t in (
            "&Duplicate", "Free&ze / Unfreeze Selection", "Freeze Up to &Here", "&Group…",
            "Ungrou&p")}
        self.canvas.selection_changed.connect(self._update_action_states)
        self._action("Go &Up", self.editor.go_up, ["Ctrl+Up", "Alt+Up"], edit)
        self.editor.message.connect(lambda text: self.statusBar().showMessage(text, 15_000))
        edit.addSeparator()
        self._action("Select &All", lambda: self.canvas.select(self.doc.shown.nodes), "Ctrl+A",
                     edit)

        view = bar.addMenu("&View")
        self._action("&Fit All", self.canvas.fit_all, "Ctrl+0", view)
        self._action("Frame &Selection", self.canvas.frame_selection, "F", view)
        self._action("Zoom &In", lambda: self.canvas.zoom_by(1.25), K.ZoomIn, view)
        self._action("Zoom &Out", lambda: self.canvas.zoom_by(0.8), K.ZoomOut, view)
        self._locked_actions.append(self._action("Auto &Layout", self.auto_layout, "Ctrl+L",
                                                 view))
        view.addSeparator()
        theme = view.addMenu("&Theme")
        for label, dark in (("Follow System", None), ("Light", False), ("Dark", True)):
            self._action(label, lambda _=False, d=dark: self.set_theme(d), None, theme)
        view.addSeparator()
        for dock in self._docks.values():
            view.addAction(dock.toggleViewAction())

        tools = self.addToolBar("Main")
        tools.setObjectName("toolbar_main")
        for action in (self.new_action, self.open_action, self.save_action):
            tools.addAction(action)
        # fixed labels on the toolbar ("Undo Connect a → b" would shift every button)
        stack = self.doc.undo_stack
        self._undo_redo_tools: list[QAction] = []
        for text, slot, signal, enabled in (("Undo", stack.undo, stack.canUndoChanged,
                                             stack.canUndo()),
                                            ("Redo", stack.redo, stack.canRedoChanged,
                                             stack.canRedo())):
            action = self._action(text, slot)
            action.setEnabled(enabled)
            signal.connect(lambda on, a=action: a.setEnabled(on and not self.training.is_running))
            tools.addAction(action)
            self._undo_redo_tools.append(action)
        tools.addSeparator()
        self._locked_actions.append(self._action("Layout", self.auto_layout))
        tools.addAction(self._locked_actions[-1])
        tools.addAction(self._action("Fit", self.canvas.fit_all))
        tools.addSeparator()
        run = bar.addMenu("&Train")
        self.train_action = self._action("&Start Training", self.start_training, "F5", run)
        self.stop_action = self._action("S&top Training", self.training.stop, "Shift+F5", run)
        self.stop_action.setEnabled(False)
        self.train_action.setIconText("Train")
        self.stop_action.setIconText("Stop")
        tools.addAction(self.train_action)
        tools.addAction(self.stop_action)
        self.training.running_changed.connect(self._on_training_running)
        self.training.running_changed.connect(self.training_room.running_changed)

    @staticmethod
    def _template_title(f) -> str:
        try:
            return Graph.loads(f.read_text("utf-8"), f.name).name
        except GraphError:
            return f.name

    # ---- documents --------------------------------------------------------------------

    def maybe_save(self) -> bool:
        """True when it is safe to replace the document (saved, discarded or clean, and
        no training run is using it)."""
        if self.training.is_running:
            answer = QMessageBox.question(
                self, "Training in progress", "A training run is using this design. Stop it "
                "(its checkpoint is kept)?", QMessageBox.StandardButton.Yes
                | QMessageBox.StandardButton.Cancel, QMessageBox.StandardButton.Cancel)
            if answer != QMessageBox.StandardButton.Yes:
                return False
            self.training.stop_and_wait()
        if not self.doc.is_dirty:
            return True
        answer = QMessageBox.question(
            self, "Unsaved changes", f"Save the changes to {self.doc.title().rstrip(' *')}?",
            QMessageBox.StandardButton.Save | QMessageBox.StandardButton.Discard
            | QMessageBox.StandardButton.Cancel, QMessageBox.StandardButton.Save)
        if answer == QMessageBox.StandardButton.Save:
            return self.save()
        return answer == QMessageBox.StandardButton.Discard

    def new_document(self) -> None:
        if self.maybe_save():
            self.doc.new()
            self.recovery.discard()

    def new_from_template(self, f) -> None:
        if self.maybe_save():
            self.doc.new_from(Graph.loads(f.read_text("utf-8"), f.name))
            self.recovery.discard()
            self.canvas.show_design()

    def ask_open(self) -> None:
        if not self.maybe_save():
            return
        start = str(Path(self.doc.path).parent) if self.doc.path else ""
        path, _ = QFileDialog.getOpenFileName(self, "Open graph", start, FILE_FILTER)
        if path:
            self.open_file(path, ask=False)

    def open_file(self, path: str, ask: bool = True) -> bool:
        if ask and not self.maybe_save():
            return False
        try:
            self.doc.open(path)
        except GraphError as exc:
            QMessageBox.warning(self, "Cannot open graph", f"{Path(path).name}:\n\n{exc}")
            return False
        self.recovery.discard()
        self._remember(path)
        self.canvas.show_design()
        return True

    def save(self) -> bool:
        if not self.doc.path:
            return self.save_as()
        return self._save_to(self.doc.path)

    def save_as(self) -> bool:
        """Save to a file the user picks; an untitled design takes the file's name (the
        name its exports, runs and ``.py`` class are called by), in the same step."""
        path, _ = QFileDialog.getSaveFileName(self, "Save graph", self.doc.path or
                                              "untitled.convas.json", FILE_FILTER)
        if not path:
            return False
        if not path.endswith(".json"):
            path += ".convas.json"
        untitled = self.doc.graph.name.strip() in ("", "Untitled")
        return self._save_to(path, rename=untitled)

    def _save_to(self, path: str, rename: bool = False) -> bool:
        old_name = self.doc.graph.name
        if rename:
            self.doc.graph.name = _file_stem(path) or old_name
        try:
            self.doc.save(path)
        except OSError as exc:
            self.doc.graph.name = old_name   # not saved: nothing changed
            QMessageBox.critical(self, "Not saved",
                                 f"Could not save {path}:\n{exc.strerror or exc}\n\nYour "
                                 f"design is still open and the old file is unchanged; free "
                                 f"some space or choose another place.")
            return False
        self.recovery.discard()
        self._remember(path)
        return True

    def offer_recovery(self) -> bool:
        """After a crash: offer the newest autosaved design; True when one was restored."""
        pending = Recovery.pending(self.recovery.folder)
        if not pending:
            return False
        newest = pending[0]
        answer = QMessageBox.question(
            self, "Recover unsaved work?",
            f"Convas closed unexpectedly while {newest.name} had unsaved changes "
            f"(autosaved {newest.when}). Restore them?",
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No)
        if answer == QMessageBox.StandardButton.Yes:
            try:
                Recovery.restore(self.doc, newest)
            except GraphError as exc:
                QMessageBox.warning(self, "Cannot recover",
                                    f"The autosaved copy is damaged and was removed:\n\n{exc}")
                newest.discard()
                return False
            self.canvas.show_design()
            return True
        newest.discard()
        return False

    def export(self, fmt: str, path: str | None = None) -> bool:
        """Export the design as ``convas export`` does, through the same engine function:
        ONNX (in a child process, checked against onnxruntime), a PyTorch ``.py`` (its
        weights beside it as ``.pt``) or a checkpoint, with the last run's weights while
        they fit the design (else fresh ones, and the message says why)."""
        from engine.export import ExportError, export_design
        from engine.export.design import SUFFIXES

        interactive = path is None
        suffix = SUFFIXES[fmt]
        trained = self.training.trained()   # the run's checkpoint, or its converted one
        ckpt = trained.path if trained is not None else self.training.checkpoint
        if fmt == "checkpoint" and ckpt is None:
            QMessageBox.information(self, "No trained weights",
                                    "Train the design first (Training dock, Start): the "
                                    "checkpoint is what a run saves.")
            return False
        if path is None:
            path, _ = QFileDialog.getSaveFileName(self, "Export", self.doc.graph.name + suffix,
                                                  f"*{suffix}")
            if not path:
                return False
        # A large network's export and onnxruntime check take seconds: say it is busy.
        self.statusBar().showMessage(f"exporting {Path(path).name}…")
        QApplication.setOverrideCursor(Qt.CursorShape.WaitCursor)
        QApplication.processEvents()
        try:
            if fmt == "onnx":
                ok, outcome = self._export_in_child(path, fmt, ckpt)
                if not ok:
                    raise ExportError(outcome)
            else:  # a .py or a checkpoint takes a moment: no child needed
                outcome = export_design(self.doc.graph, path, fmt, ckpt, if_unfit="untrained")
            message = outcome.describe()
        except (GraphError, ExportError) as exc:
            message = ""
            failure = str(exc)
        finally:
            QApplication.restoreOverrideCursor()
        if not message:
            self.statusBar().clearMessage()
            QMessageBox.warning(self, "Export failed", failure)
            return False
        self.statusBar().showMessage(message, 30_000)
        if interactive:
            QMessageBox.information(self, "Exported", message)
        return True

    def _export_in_child(self, path: str, fmt: str, weights: Path | None) -> tuple[bool, object]:
        """Run export_design in a child process while this event loop keeps running (the
        window repaints, a run keeps reporting): ``(True, ExportResult)`` or
        ``(False, message)``."""
        from concurrent.futures.process import BrokenProcessPool

        from PySide6.QtCore import QEventLoop, QTimer

        from engine.export.in_child import start_export

        future = start_export(self.doc.graph, path, fmt, weights, if_unfit="untrained")
        loop = QEventLoop()
        poll = QTimer(interval=50)
        poll.timeout.connect(lambda: future.done() and loop.quit())
        self._exporting = True
        self._export_menu.setEnabled(False)
        try:
            poll.start()
            if not future.done():
                loop.exec()
        finally:
            poll.stop()
            self._exporting = False
            self._export_menu.setEnabled(True)
        try:
            return future.result()
        except BrokenProcessPool:
            return False, ("the export process ended unexpectedly (out of memory?); the "
                           "design is unchanged")

    def make_fully_convolutional(self, interactive: bool = True) -> bool:
        """Edit → Make Fully Convolutional (designer.fcn_edit): one undoable edit that
        also converts the last run's weights; the message says what changed."""
        from .fcn_edit import make_design_fully_convolutional

        outcome = make_design_fully_convolutional(self.doc, self.training.trained())
        self.statusBar().showMessage(outcome.message, 60_000)
        if interactive:
            (QMessageBox.information if outcome.ok else QMessageBox.warning)(
                self, "Make fully convolutional", outcome.message)
        return outcome.ok

    def predict_images(self) -> PredictDialog:
        """File → Predict on Images…: the design with the last run's weights that fit
        it (else a checkpoint the user picks) on image files (designer.predict_dialog)."""
        trained = self.training.trained()
        old = getattr(self, "_predict_dialog", None)
        if old is not None:   # a new dialog for the design as it is now
            old.close()
            if not old.busy:
                old.deleteLater()
        why = "" if trained else ("no training run yet" if self.training.checkpoint is None
                                  else "the design changed since the last training run")
        self._predict_dialog = PredictDialog(self.doc.graph, trained.path if trained else None,
                                             self, why)
        self._predict_dialog.show()
        return self._predict_dialog

    def import_model(self):
        """File → Import…: an ONNX file or a PyTorch function as a new design with its
        weights (designer.import_dialog); the dialog, or None when the user kept the
        current design."""
        from .import_dialog import ImportDialog

        if not self.maybe_save():
            return None
        self._import_dialog = ImportDialog(self)
        self._import_dialog.show()
        return self._import_dialog

    def start_training(self) -> bool:
        """Train the design with the Training dock's settings, the dock in view."""
        self._docks["Training"].show()
        self._docks["Training"].raise_()
        return self.training.start()

    def _on_training_running(self, running: bool) -> None:
        """A run trains the design as it was at Start; until it ends the design is locked
        (canvas, inspector, undo), so the weights it saves always fit what is shown."""
        self._training_now = running
        self.train_action.setEnabled(not running)
        self.stop_action.setEnabled(running)
        self.inspector.setEnabled(not running)
        self._update_action_states()
        stack = self.doc.undo_stack
        can = (stack.canUndo(), stack.canRedo())
        for action, possible in zip((self.undo_action, self.redo_action), can, strict=True):
            action.setEnabled(possible and not running)
        for action, possible in zip(self._undo_redo_tools, can, strict=True):
            action.setEnabled(possible and not running)

    def _update_action_states(self, *_args) -> None:
        """Edits are off during a run; those that act on the selection are off, too,
        while nothing is selected (greyed out rather than answering "select a block")."""
        running = self._training_now
        selected = bool(self.canvas.selected_nodes())
        for action in self._locked_actions:
            action.setEnabled(not running and (selected or action not in
                                               self._selection_actions))
        for action in self._selection_actions - set(self._locked_actions):
            action.setEnabled(selected)

    def show_first_problem(self) -> None:
        """Raise the problems list and select the first block with an error."""
        self._docks["Problems"].raise_()
        first = next((e.node for e in self.doc.report.errors if e.node), None)
        if first is not None:
            self.canvas.select([first])
            self.canvas.frame_selection()

    def auto_layout(self) -> None:
        self.doc.apply_layout(layered_layout(self.doc.shown))
        self.canvas.show_design()

    def set_theme(self, dark: bool | None) -> None:
        apply_theme(QApplication.instance(), dark)
        is_dark = bool(dark) if dark is not None else _system_dark()
        self.canvas.set_dark(is_dark)
        self.training.plots.set_dark(is_dark)
        self.training.segmentation.iou.set_dark(is_dark)
        self.training.detection.map.set_dark(is_dark)
        self.settings.setValue("theme", "system" if dark is None else
                               ("dark" if dark else "light"))

    # ---- window state -----------------------------------------------------------------

    def _update_title(self, *_args) -> None:
        self.setWindowTitle(f"{self.doc.title()} — Convas")

    def _update_status(self, *_args) -> None:
        self.totals.setText(self.editor.status_text())

    def _remember(self, path: str) -> None:
        recent = [p for p in self.settings.value("recent", [], list) if p != path]
        self.settings.setValue("recent", [path, *recent][:MAX_RECENT])
        self._fill_recent()

    def _fill_recent(self) -> None:
        self.recent_menu.clear()
        recent = self.settings.value("recent", [], list)
        for path in recent:
            action = QAction(Path(path).name, self)
            action.setToolTip(path)
            action.triggered.connect(lambda _=False, p=path: self.open_file(p))
            self.recent_menu.addAction(action)
        self.recent_menu.setEnabled(bool(recent))

    def _restore_layout(self) -> None:
        dock_layout.restore(self, self.settings)  # an older version's layout is ignored

    def closeEvent(self, event: QCloseEvent) -> None:
        if self._exporting:  # the export's own event loop is running: let it finish
            self.statusBar().showMessage("an export is running: close again when it is done",
                                         10_000)
            event.ignore()
            return
        if not self.maybe_save():
            event.ignore()
            return
        self.training.shutdown()
        for dialog in self.findChildren(QDialog):  # Import, Predict: they die with the window
            dialog.close()
        self.training_room.before_save()
        dock_layout.save(self, self.settings)
        self.recovery.discard()
        event.accept()


def _file_stem(path: str) -> str:
    """``resnet_birds`` for ``…/resnet_birds.convas.json`` (or ``.json``)."""
    name = Path(path).name
    for suffix in (".convas.json", ".json"):
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def _system_dark() -> bool:
    from widgets.style import is_dark

    return is_dark(QApplication.instance())
