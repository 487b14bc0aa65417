"""File → Predict on images…: the open design, with the last run's weights, on image
files the user picks, as ``convas predict`` does it (SPEC §7): a classifier's top
classes, a segmentation's masks, a detector's boxes (scoring at least the dialog's
threshold, ``--score-threshold``'s 0.25 unless changed).

The reading, preprocessing and decoding are ``engine.predict``'s, the very functions
the command line uses, so the application and ``convas predict`` give the same answer
for the same file. Hundreds of photos take a while: the work runs in a background
thread in chunks, each chunk's results shown as they come, and the dialog stays
responsive (Stop ends it after the chunk at hand). A file that cannot be read gets its
own row with the reason; weights that do not fit the design, or a task predict cannot
run, end the job with one message in the dialog, never a traceback.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QApplication,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from engine import Graph
from engine.dataset_fit import output_task
from widgets.prediction_view import PredictionItem, PredictionView

if TYPE_CHECKING:
    from engine.predict import Predictor

CHUNK = 16          # images per forward pass and per update of the list
DETECTION_SCORE = 0.25   # convas predict's default for a detector's boxes
SHOWN_SIDE = 512    # px: larger images are shrunk for the view (the masks on disk are not)
IMAGE_FILTER = "Images (*.png *.jpg *.jpeg *.bmp *.gif *.tif *.tiff *.webp);;All files (*)"


class PredictDialog(QDialog):
    """Choose images (and, if needed, a checkpoint), predict, look at the results."""

    finished_predicting = Signal(str)    # "" when every chunk is done, else why it ended
    _answer = Signal(int, str, object)   # worker → GUI thread: job, kind, payload

    def __init__(self, graph: Graph, weights: Path | None, parent: QWidget | None = None,
                 why_no_weights: str = "") -> None:
        super().__init__(parent)
        self.setWindowTitle(f"Predict with {graph.name or 'the design'}")
        self.resize(900, 640)
        self.graph = graph.copy()       # the design as it was when the dialog opened
        self.task = output_task(_report(self.graph))
        self.weights = weights
        self.images: list[Path] = []
        self.out_dir: Path | None = None
        self._job = 0          # the job whose answers are shown
        self._running = 0      # the job the background thread is doing (0: none)
        self._cancel = threading.Event()
        self._thread: threading.Thread | None = None
        self._closed = False   # the application is quitting: nothing more into Qt
        self._answer.connect(self._deliver, Qt.ConnectionType.QueuedConnection)
        QApplication.instance().aboutToQuit.connect(self.shutdown)

        self.images_label = QLabel("No images chosen.")
        self.images_label.setWordWrap(True)
        self.files_button = QPushButton("Images…")
        self.folder_button = QPushButton("Folder…")
        self.files_button.clicked.connect(self.choose_files)
        self.folder_button.clicked.connect(self.choose_folder)
        self.weights_label = QLabel()
        self.weights_label.setWordWrap(True)
        self.weights_button = QPushButton("Checkpoint…")
        self.weights_button.clicked.connect(self.choose_weights)
        self.top_spin = QSpinBox()
        self.top_spin.setRange(1, 100)
        self.top_spin.setValue(5)
        self.top_spin.setToolTip("How many of the most probable classes to show per image")
        self.top_spin.setMaximumWidth(8 * self.top_spin.fontMetrics().averageCharWidth() + 40)
        self.score_spin = QDoubleSpinBox()   # a detector's: as convas predict --score-threshold
        self.score_spin.setRange(0.01, 1.0)
        self.score_spin.setSingleStep(0.05)
        self.score_spin.setValue(DETECTION_SCORE)
        self.score_spin.setToolTip("The boxes shown score at least this much (objectness × "
                                   "class probability)")
        self.score_spin.setMaximumWidth(self.top_spin.maximumWidth())
        self.masks_label = QLabel()
        self.masks_label.setWordWrap(True)
        self.masks_button = QPushButton("Folder…")
        self.masks_button.clicked.connect(self.choose_mask_folder)
        form = QFormLayout()
        form.addRow("Images:", _row(self.images_label, self.files_button, self.folder_button))
        form.addRow("Weights:", _row(self.weights_label, self.weights_button))
        masks = _row(self.masks_label, self.masks_button)
        shown = {"segmentation": [masks], "detection": [self.score_spin]}.get(
            self.task, [self.top_spin])
        if masks in shown:
            form.addRow("Masks saved to:", masks)
        if self.top_spin in shown:
            form.addRow("Top classes:", self.top_spin)
        if self.score_spin in shown:
            form.addRow("Score threshold:", self.score_spin)
        for unused in {masks, self.top_spin, self.score_spin} - set(shown):
            unused.setParent(self)
            unused.hide()
        self.status = QLabel()
        self.status.setWordWrap(True)
        self.status.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.view = PredictionView(self)
        buttons = QDialogButtonBox(self)
        self.predict_button = buttons.addButton("Predict",
                                                QDialogButtonBox.ButtonRole.ActionRole)
        self.stop_button = buttons.addButton("Stop", QDialogButtonBox.ButtonRole.ActionRole)
        self.close_button = buttons.addButton(QDialogButtonBox.StandardButton.Close)
        self.predict_button.clicked.connect(self.start)
        self.stop_button.clicked.connect(self.stop)
        self.close_button.clicked.connect(self.close)
        self.stop_button.setEnabled(False)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.status)
        layout.addWidget(self.view, 1)
        layout.addWidget(buttons)
        self._show_weights(why_no_weights)
        self._update_buttons()

    # ---- choices -----------------------------------------------------------------------

    def choose_files(self) -> None:
        files, _ = QFileDialog.getOpenFileNames(self, "Images to predict", "", IMAGE_FILTER)
        if files:
            self.set_images(files)

    def choose_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "A folder of images")
        if folder:
            self.set_images([folder])

    def choose_weights(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Trained weights", "",
                                              "Convas checkpoints (*.pt);;All files (*)")
        if path:
            self.weights = Path(path)
            self._show_weights()
            self._update_buttons()

    def choose_mask_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Where to save the masks")
        if folder:
            self.out_dir = Path(folder)
            self._show_weights()

    def set_images(self, paths: Sequence[str | Path]) -> None:
        """The files and folders to predict (a folder stands for its image files)."""
        self.images = [Path(p) for p in paths]
        names = ", ".join(p.name + ("/" if p.is_dir() else "") for p in self.images[:4])
        more = f" and {len(self.images) - 4} more" if len(self.images) > 4 else ""
        self.images_label.setText(names + more)
        self._update_buttons()

    def _mask_folder(self) -> Path | None:
        """Masks go where the user said, else into ``predictions`` beside the weights,
        never among the user's own images unasked."""
        if self.out_dir is not None:
            return self.out_dir
        return self.weights.parent / "predictions" if self.weights is not None else None

    def _show_weights(self, why_not: str = "") -> None:
        if self.weights is None:
            reason = f" ({why_not})" if why_not else ""
            self.weights_label.setText(f"No trained weights fit this design{reason}: train it "
                                       f"first, or choose a checkpoint (a model.pt).")
        else:
            self.weights_label.setText(str(self.weights))
        folder = self._mask_folder()
        self.masks_label.setText(str(folder) if folder else "beside the weights, once chosen")

    def _update_buttons(self) -> None:
        running = self.busy
        self.predict_button.setEnabled(not running and bool(self.images))
        self.stop_button.setEnabled(running)
        for button in (self.files_button, self.folder_button, self.weights_button,
                       self.masks_button, self.top_spin, self.score_spin):
            button.setEnabled(not running)

    # ---- the job -----------------------------------------------------------------------

    def start(self) -> bool:
        """Predict the chosen images in the background; False when nothing started."""
        if self._thread is not None or not self.images:
            return False
        if self.weights is None:
            self.choose_weights()
            if self.weights is None:
                return False
        self._job += 1
        self._running = self._job
        self._cancel = threading.Event()
        self.view.clear()
        self.status.setText("Loading the weights…")
        self._thread = threading.Thread(
            target=self._work, name="convas-predict", daemon=True,
            args=(self._job, self.graph, self.weights, list(self.images),
                  self.top_spin.value(), self._mask_folder(), self._cancel,
                  self.score_spin.value() if self.task == "detection" else 0.0))
        self._thread.start()
        self._update_buttons()
        return True

    @property
    def busy(self) -> bool:
        """A background job is running (or finishing the chunk at hand after Stop)."""
        return self._thread is not None

    def stop(self) -> None:
        self._cancel.set()

    def wait(self, timeout: float = 60.0) -> None:
        """Block until the background job has ended (tests, closing)."""
        if self._thread is not None:
            self._thread.join(timeout)

    def shutdown(self) -> None:
        """Before the application quits: stop, and let the thread end without talking
        to Qt (a thread emitting while the interpreter shuts down can crash it)."""
        self._closed = True
        self._cancel.set()
        self.wait(10.0)

    def closeEvent(self, event) -> None:  # noqa: N802 - Qt override
        self._cancel.set()   # the chunk at hand finishes; nothing more is shown
        self._job += 1
        super().closeEvent(event)

    def reject(self) -> None:
        """Escape: as Close, the job stops too."""
        self._cancel.set()
        self._job += 1
        super().reject()

    def _deliver(self, job: int, kind: str, payload: Any) -> None:
        if kind == "done" and job == self._running:
            self._running, self._thread = 0, None
            self._update_buttons()
        if job != self._job:
            return   # a job the user stopped or closed: its last words are not shown
        if kind == "started":
            count, _task = payload
            self.status.setText(f"Predicting {count:,} image{'s' if count != 1 else ''}…")
        elif kind == "items":
            self.view.add_items(payload)
            done = len(self.view.items())
            self.status.setText(f"{done:,} image{'s' if done != 1 else ''} done…")
        elif kind == "done":
            self.status.setText(payload or self._summary())
            self.finished_predicting.emit(payload)

    def _summary(self) -> str:
        items = self.view.items()
        failed = sum(1 for i in items if i.error)
        text = f"{len(items) - failed:,} of {len(items):,} images predicted"
        if failed:
            text += f"; {failed} could not be read (their rows say why)"
        if self._cancel.is_set():
            text += "; stopped"
        folder = self._mask_folder()
        if self.task == "segmentation" and folder is not None:
            text += f"; masks saved in {folder}"
        return text + "."

    # ---- background thread -------------------------------------------------------------

    def _work(self, job: int, graph: Graph, weights: Path, paths: list[Path], top: int,
              out_dir: Path | None, cancel: threading.Event, threshold: float = 0.0) -> None:
        from engine import GraphError
        from engine.predict import PredictError, image_files, load_predictor

        def say(*args: Any) -> None:
            if self._closed:
                return
            try:
                self._answer.emit(job, *args)
            except RuntimeError:   # the dialog was deleted meanwhile: no one to tell
                cancel.set()

        try:
            files = image_files(paths)
            predictor = load_predictor(graph, weights)
            say("started", (len(files), predictor.task))
            for start in range(0, len(files), CHUNK):
                if cancel.is_set():
                    break
                chunk = files[start:start + CHUNK]
                say("items", predict_items(predictor, chunk, top, out_dir, threshold))
        except (PredictError, GraphError) as exc:
            say("done", f"Cannot predict: {str(exc).rstrip('.')}.")
            return
        except Exception as exc:  # noqa: BLE001 - a prediction must never take the app down
            say("done", f"Cannot predict: {type(exc).__name__}: {exc}.")
            return
        say("done", "")


def predict_items(predictor: Predictor, files: Sequence[Path], top: int,
                  out_dir: Path | None, threshold: float = 0.0) -> list[PredictionItem]:
    """``engine.predict.predict`` on ``files`` as view items (``threshold``: its
    ``score_threshold``); when a file cannot be read, the others are predicted one by
    one, so only that file's row has the error."""
    from engine.predict import PredictError, predict

    options = dict(top=top, out_dir=out_dir, score_threshold=threshold)
    try:
        results = predict(predictor, files, **options)
    except PredictError:
        results = []
        for f in files:
            try:
                results += predict(predictor, [f], **options)
            except PredictError as exc:
                results.append({"image": str(f), "error": str(exc)})
    return [_item(r, predictor.classes) for r in results]


def _item(result: dict, classes: list[str]) -> PredictionItem:
    """One result of ``engine.predict.predict`` with the pictures to show it."""
    from PIL import Image

    path = result["image"]
    if "error" in result:
        return PredictionItem(path, error=result["error"])
    try:
        with Image.open(path) as img:
            own = img.size
            shown = img.convert("RGB")
        shown.thumbnail((SHOWN_SIDE, SHOWN_SIDE))
        image = np.asarray(shown)
        mask = None
        if "mask" in result:
            with Image.open(result["mask"]) as written:
                mask = np.asarray(written.resize(shown.size, Image.Resampling.NEAREST))
    except OSError as exc:
        return PredictionItem(path, error=f"predicted, but cannot be shown: {exc}")
    top = tuple((t["class"], float(t["probability"])) for t in result.get("top", ()))
    found = result.get("detections")
    return PredictionItem(path, image, top, mask, tuple(classes), result.get("mask", ""),
                          detections=None if found is None else tuple(found), own_size=own)


def _report(graph: Graph):
    from engine import analyze

    return analyze(graph)


def _row(*widgets: QWidget) -> QWidget:
    holder = QWidget()
    layout = QHBoxLayout(holder)
    layout.setContentsMargins(0, 0, 0, 0)
    layout.addWidget(widgets[0], 1)
    for w in widgets[1:]:
        layout.addWidget(w)
    return holder
