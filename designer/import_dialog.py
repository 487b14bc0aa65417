"""File → Import…: an existing network (an ONNX file, or a Python function returning an
``nn.Module``) as a new design with its weights (SPEC §8).

The import runs in a background thread (ResNet-50's ONNX file takes seconds), so the
window keeps painting; the dialog says what it is doing. What it can go wrong with is
shown in the dialog itself, where the user can fix it and press Import again: a
model with operators no block expresses lists each (type, count, an example node); a
model whose input size is open asks for C,H,W; an unreadable file says why.

On success the design opens as a new untitled document, laid out, and the model's
weights become the "last run's" weights: they are saved as a checkpoint in a new run
folder (``designer.run_folders``), which the Training dock then uses for feature maps,
Export and Predict, and which the design's "Start from weights" names, so that
training it fine-tunes from them.
"""

from __future__ import annotations

import contextlib
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from engine import Graph
from engine.importers import SHAPE_EXAMPLE, parse_input_shape

if TYPE_CHECKING:
    from .mainwindow import MainWindow

MODEL_FILTER = "ONNX models (*.onnx);;Python files (*.py);;All files (*)"


@dataclass(frozen=True)
class ImportDone:
    """What the worker hands back: the design, where its weights were saved, and the
    importer's one-line summary and notes."""

    graph: Graph
    checkpoint: Path
    summary: str
    notes: list[str]


def import_and_save(model: str, shape: tuple[int, int, int] | None) -> ImportDone:
    """Import ``model`` and save its weights as a checkpoint in a new run folder (the
    background thread's work; raises the importer's errors, or CheckpointError/OSError)."""
    from engine.importers import import_model

    from .cli_import import save_imported
    from .run_folders import new_run_folder

    imported = import_model(model, shape)
    graph = imported.graph
    checkpoint = save_imported(imported, model, new_run_folder(graph.name) / "model.pt")
    # training it fine-tunes from the imported weights (Training panel: Start from weights)
    graph.training = {**graph.training, "init": str(checkpoint)}
    return ImportDone(graph, checkpoint, imported.summary(), list(imported.notes))


class ImportDialog(QDialog):
    """Choose a model, import it in the background, open it in ``window``."""

    imported = Signal(object)            # ImportDone, once the design is open
    _answer = Signal(int, str, object)   # worker → GUI thread: job, kind, payload

    def __init__(self, window: MainWindow, parent: QWidget | None = None) -> None:
        super().__init__(parent or window)
        self.window_ = window
        self.setWindowTitle("Import a model")
        self.setModal(True)
        self.resize(640, 200)
        self._job = 0
        self._thread: threading.Thread | None = None
        self._answer.connect(self._deliver, Qt.ConnectionType.QueuedConnection)

        self.model = QLineEdit(self)
        self.model.setPlaceholderText("model.onnx, or file.py:function, or "
                                      "package.module:function")
        self.model.setToolTip("An ONNX file (from torch.onnx.export, either exporter), or "
                              "a Python function that returns an nn.Module (traced with "
                              "torch.fx)")
        self.browse = QPushButton("Browse…", self)
        self.browse.clicked.connect(self.choose_file)
        self.shape = QLineEdit(self)
        self.shape.setPlaceholderText(f"as the model says (e.g. {SHAPE_EXAMPLE})")
        self.shape.setToolTip("The input size C,H,W to import at: needed for a Python "
                              "model, and for an ONNX file that leaves its size open")
        row = QHBoxLayout()
        row.addWidget(self.model, 1)
        row.addWidget(self.browse)
        form = QFormLayout()
        form.addRow("Model", row)
        form.addRow("Input shape", self.shape)

        self.status = QLabel("", self)
        self.status.setWordWrap(True)
        self.status.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.busy_bar = QProgressBar(self)
        self.busy_bar.setRange(0, 0)   # busy, for as long as it takes
        self.busy_bar.hide()
        # a model Convas cannot express: each operator with its count and a node
        self.unsupported = QTreeWidget(self)
        self.unsupported.setHeaderLabels(["Operator", "Count", "Example node"])
        self.unsupported.setRootIsDecorated(False)
        self.unsupported.hide()

        self.buttons = QDialogButtonBox(self)
        self.import_button = self.buttons.addButton("Import",
                                                    QDialogButtonBox.ButtonRole.AcceptRole)
        self.buttons.addButton(QDialogButtonBox.StandardButton.Cancel)
        self.buttons.accepted.connect(self.start)
        self.buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.status)
        layout.addWidget(self.unsupported, 1)
        layout.addWidget(self.busy_bar)
        layout.addWidget(self.buttons)

    # ---- choosing ---------------------------------------------------------------------

    def choose_file(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Import a model", "", MODEL_FILTER)
        if not path:
            return
        if path.endswith(".py"):   # a file of Python: which function builds the model?
            self.model.setText(path + ":")
            self.model.setFocus()
            self.model.end(False)
            self._say("Type the name of the function that returns the model after the "
                      "colon, and its input size C,H,W.")
        else:
            self.model.setText(path)

    # ---- the job ----------------------------------------------------------------------

    @property
    def busy(self) -> bool:
        return self._thread is not None

    def start(self) -> bool:
        """Import what the fields say, in the background; False when nothing started
        (the dialog then says what to fix)."""
        from engine.importers import is_python_ref

        if self.busy:
            return False
        model = self.model.text().strip()
        if not model:
            self._say("Choose an .onnx file (Browse…) or type file.py:function.", error=True)
            return False
        try:
            shape = parse_input_shape(self.shape.text())
        except ValueError as exc:
            self._say(str(exc), error=True)
            self.shape.setFocus()
            return False
        python = is_python_ref(model)
        if not python and not Path(model).is_file():
            self._say(f"{model} is not a file: choose the .onnx file with Browse…, or type "
                      f"a Python reference as file.py:function.", error=True)
            return False
        if python and shape is None:
            self._ask_shape("A PyTorch model does not say what input size it takes")
            return False
        self._job += 1
        self.unsupported.hide()
        self._say(f"Importing {Path(model).name if not python else model}…")
        self._set_busy(True)
        self._thread = threading.Thread(target=self._work, name="convas-import", daemon=True,
                                        args=(self._job, model, shape))
        self._thread.start()
        return True

    def wait(self, timeout: float = 60.0) -> None:
        """Block until the background import has ended (tests)."""
        if self._thread is not None:
            self._thread.join(timeout)

    def _work(self, job: int, model: str, shape: tuple[int, int, int] | None) -> None:
        from engine.checkpoint import CheckpointError
        from engine.importers import ImportModelError, NeedsInputShape, UnsupportedModel

        try:
            kind, payload = "done", import_and_save(model, shape)
        except UnsupportedModel as exc:
            kind, payload = "unsupported", exc
        except NeedsInputShape as exc:
            kind, payload = "needs shape", str(exc)
        except ImportModelError as exc:
            kind, payload = "failed", str(exc)
        except CheckpointError as exc:
            kind, payload = "failed", f"The weights could not be saved: {exc}"
        except OSError as exc:
            kind, payload = "failed", (f"The weights could not be saved: "
                                       f"{exc.strerror or exc}. Free some space.")
        except Exception as exc:  # noqa: BLE001 - a model's own code may raise anything
            kind, payload = "failed", f"The import failed: {type(exc).__name__}: {exc}"
        # the window may have closed meanwhile: then there is no one left to tell
        with contextlib.suppress(RuntimeError):
            self._answer.emit(job, kind, payload)

    def _deliver(self, job: int, kind: str, payload: Any) -> None:
        self._thread = None
        self._set_busy(False)
        if job != self._job:
            return   # cancelled: its result is not shown
        if kind == "done":
            self._open(payload)
        elif kind == "unsupported":
            self._show_unsupported(payload)
        elif kind == "needs shape" and not self.shape.text().strip():
            self._ask_shape("The model does not fix its input size")
        else:
            self._say(payload.replace("--input-shape", "the input shape"), error=True)

    def _open(self, done: ImportDone) -> None:
        window = self.window_
        window.doc.new_from(done.graph)
        window.recovery.discard()
        window.training.checkpoint = done.checkpoint   # the "last run's" weights
        window.canvas.show_design()
        window.statusBar().showMessage(done.summary, 60_000)
        self.imported.emit(done)
        self.accept()

    def _show_unsupported(self, exc: Any) -> None:
        self.unsupported.clear()
        for op, count, node in exc.operators:
            self.unsupported.addTopLevelItem(QTreeWidgetItem([str(op), str(count), str(node)]))
        for reason in exc.reasons:
            self.unsupported.addTopLevelItem(QTreeWidgetItem(["(how it is used)", "",
                                                              str(reason)]))
        for col in range(3):
            self.unsupported.resizeColumnToContents(col)
        self.unsupported.show()
        self._say("Convas has no block for these operators of the model, so it cannot be "
                  "imported: replace these layers in the model, or build the design by hand.",
                  error=True)

    def unsupported_rows(self) -> list[tuple[str, str, str]]:
        """The operator list as shown (tests)."""
        items = (self.unsupported.topLevelItem(i)
                 for i in range(self.unsupported.topLevelItemCount()))
        return [(it.text(0), it.text(1), it.text(2)) for it in items]

    # ---- look -------------------------------------------------------------------------

    def _ask_shape(self, why: str) -> None:
        self._say(f"{why}: give the input size to import it at as C,H,W (e.g. "
                  f"{SHAPE_EXAMPLE}), then Import again.", error=True)
        self.shape.setFocus()

    def _say(self, text: str, error: bool = False) -> None:
        self.status.setText(text)
        self.status.setStyleSheet("color: #d32f2f;" if error else "")
        self.status.setProperty("error", error)

    def _set_busy(self, busy: bool) -> None:
        self.busy_bar.setVisible(busy)
        for w in (self.model, self.browse, self.shape, self.import_button):
            w.setEnabled(not busy)

    def reject(self) -> None:
        """Cancel: an import under way finishes in the background, unseen."""
        self._job += 1
        super().reject()
