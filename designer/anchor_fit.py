"""Edit → Fit Anchors to Dataset…: anchor sizes for a detection design's Output from
k-means over its training boxes (engine.detection.anchors), as one undoable edit.

A head learns each box as a scaling of an anchor, and a true box goes to the anchor it
overlaps best, so anchors that match the dataset's box sizes make the start of training
easier. The dialog loads the dataset the design trains on (its ``training`` settings,
as the Training dock's preview does) in a background thread, keeps the number of
anchors (the head's channels depend on it), and shows how well the anchors cover the
training boxes before and after — the mean over the boxes of their best IoU with an
anchor — so the person decides with the figure in front of them. Apply changes the
Output's ``anchors`` in one step that Ctrl+Z takes back.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QDialog, QDialogButtonBox, QLabel, QVBoxLayout, QWidget

from .anchor_stats import AnchorFit, fit_anchors
from .dataset_preview import load_run_dataset

if TYPE_CHECKING:
    from .document import Document
    from .mainwindow import MainWindow


def detection_output(graph) -> str | None:
    """The design's Output block when its task is detection, else None."""
    for n in graph.nodes:
        if graph.type_of(n) == "Output" and graph.params_of(n).get("task") == "detection":
            return n
    return None


class AnchorFitDialog(QDialog):
    """Loads the dataset, fits, shows before → after; Apply makes the edit."""

    fitted = Signal(object)               # AnchorFit, or a str saying why not
    _answer = Signal(int, object)         # worker → GUI thread: job, AnchorFit or str

    def __init__(self, doc: Document, node: str, current: list[list[float]], source: str,
                 image_shape: tuple[int, int, int] | None, settings: dict[str, Any],
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Fit anchors to the dataset")
        self.doc, self.node, self.source = doc, node, source
        self.result: AnchorFit | None = None
        self._job = 1
        self._closed = False
        self._answer.connect(self._deliver, Qt.ConnectionType.QueuedConnection)
        self.text = QLabel(f"Loading {source} and fitting {len(current)} anchors to its "
                           f"training boxes…")
        self.text.setWordWrap(True)
        self.text.setTextFormat(Qt.TextFormat.RichText)
        self.text.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Cancel, self)
        self.apply_button = self.buttons.addButton("Apply",
                                                   QDialogButtonBox.ButtonRole.AcceptRole)
        self.apply_button.setEnabled(False)
        self.buttons.accepted.connect(self.apply)
        self.buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(self.text)
        layout.addWidget(self.buttons)
        self.resize(460, 260)
        self._thread = threading.Thread(
            target=self._work, args=(self._job, current, source, image_shape, settings),
            name="convas-anchor-fit", daemon=True)
        self._thread.start()

    def wait(self, timeout: float = 60.0) -> None:
        self._thread.join(timeout)

    def _work(self, job: int, current: list[list[float]], source: str,
              image_shape: tuple[int, int, int] | None, settings: dict[str, Any]) -> None:
        from engine.data import DatasetError

        try:
            ds = load_run_dataset(source, image_shape, settings)
            if getattr(ds, "task", "") != "detection":
                raise ValueError(f"{source} has no boxes (it is a {ds.task} dataset): "
                                 "choose a detection dataset in the Training panel")
            answer: AnchorFit | str = fit_anchors(ds.train.y.numpy(), current, source)
        except (DatasetError, ValueError) as exc:
            answer = f"Cannot fit anchors: {str(exc).rstrip('.')}."
        except Exception as exc:  # noqa: BLE001 - a dialog must never take the app down
            answer = f"Cannot fit anchors: {type(exc).__name__}: {exc}."
        if not self._closed:
            try:
                self._answer.emit(job, answer)
            except RuntimeError:   # the dialog was deleted meanwhile
                pass

    def _deliver(self, job: int, answer: AnchorFit | str) -> None:
        if job != self._job:
            return
        if isinstance(answer, str):
            self.text.setText(answer)
        else:
            self.result = answer
            self.text.setText(describe(answer))
            self.apply_button.setEnabled(answer.fitted != answer.current)
            self.apply_button.setDefault(self.apply_button.isEnabled())   # Enter applies
        self.fitted.emit(answer)

    def apply(self) -> bool:
        """Set the Output's anchors (one undo step) and close; False when nothing
        changed (no result yet, or the anchors are already these)."""
        if self.result is None:
            return False
        if self.doc.scope and self.node not in self.doc.shown:
            self.doc.leave(0)   # the Output is in the top design
        changed = self.doc.set_params(self.node, {"anchors": self.result.fitted},
                                      f"Fit anchors to {self.source}")
        self.accept()
        return changed

    def done(self, code: int) -> None:
        self._closed = True
        self._job += 1
        super().done(code)


def describe(fit: AnchorFit) -> str:
    """The fit in words: the anchors before and after, and their mean best IoU."""
    def pairs(anchors: list[list[float]]) -> str:
        return ", ".join(f"{w:g}×{h:g}" for w, h in anchors)

    gain = fit.after - fit.before
    verdict = ("a better fit" if gain > 0.005 else
               "no better than the anchors you have" if gain > -0.005 else "a worse fit")
    return (f"<b>{len(fit.fitted)} anchors</b> fitted by k-means (distance 1 − IoU) to the "
            f"{fit.boxes:,} boxes of {fit.source}'s training images:<br><br>"
            f"now: {pairs(fit.current)}<br>fitted: <b>{pairs(fit.fitted)}</b><br><br>"
            f"mean best IoU of a box with an anchor: {fit.before:.3f} → <b>{fit.after:.3f}"
            f"</b> ({verdict}).<br>Apply sets the Output's anchors (Ctrl+Z takes it back); "
            "the weights of a trained head were learnt for the old anchors, so train again.")


def open_anchor_fit(window: MainWindow) -> AnchorFitDialog | None:
    """Edit → Fit Anchors to Dataset…: the dialog for the design's detection Output, or
    None with a message in the status bar saying what to do first."""
    from engine.blocks.io import DEFAULT_ANCHORS

    doc = window.doc
    node = detection_output(doc.graph)
    if node is None:
        window.statusBar().showMessage(
            "Fit Anchors is for detection designs: set the Output block's task to "
            "detection first (or start from the YOLO template).", 15_000)
        return None
    dock = window.training
    current = [list(map(float, a)) for a in
               doc.graph.params_of(node).get("anchors") or DEFAULT_ANCHORS]
    dialog = AnchorFitDialog(doc, node, current, dock._dataset(),
                             dock._input_shape(), dock._data_settings(), window)
    dialog.setWindowModality(Qt.WindowModality.WindowModal)
    dialog.show()
    return dialog
