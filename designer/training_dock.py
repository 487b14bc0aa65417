"""The Training dock: settings and controls, a preview of the dataset, live curves,
feature maps, the confusion matrix and the misclassified images of a run started from
the editor (for a segmentation run: the predicted mask, IoU curves and the worst-IoU
images, wired in ``segmentation_live``; for a detection run the boxes, mAP curves and
the images with the most missed or false boxes, in ``detection_live``).

The run trains the design as it was at Start in a child process
(``designer.training``); the canvas is read-only while it runs, and selecting a block
switches the feature maps to it without restarting. The panel's settings are the
design's: every change is an undoable edit of the file's ``training`` object. torch is
imported on the first Start or dataset preview, in the background, not at start-up.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import QHBoxLayout, QSplitter, QTabWidget, QWidget

from engine.train_config import ConfigError, TrainConfig, setting
from widgets.confusion import ConfusionView
from widgets.detection_view import boxes_caption, render_batch
from widgets.featuremaps import FeatureMapView
from widgets.gallery import (
    ImageGallery,
    misclassified_captions,
    misclassified_title,
    misclassified_tooltips,
)
from widgets.plots import TrainingPlots
from widgets.segmentation import classes_present, overlay_batch
from widgets.training_panel import TrainingPanel

from .dataset_fit import fit_button_text, fit_message, fit_problem
from .dataset_preview import DatasetPreview, DatasetScout, PreviewFailure
from .detection_live import DetectionLive
from .run_folders import new_run_folder, runs_folder
from .segmentation_live import SegmentationLive
from .trained import Trained, TrainedCache

if TYPE_CHECKING:
    from .document import Document
    from .training import TrainingController

PROBE_SECONDS = 0.5  # feature maps about twice a second, however long a step takes
DATASET_SPECIFIC = ("classes", "limit", "dataset_options")


class TrainingDock(QWidget):
    running_changed = Signal(bool)

    def __init__(self, doc: Document, canvas, parent=None) -> None:
        super().__init__(parent)
        self.doc, self.canvas = doc, canvas
        self.panel = TrainingPanel(self)
        self.plots = TrainingPlots(self)
        self.maps = FeatureMapView(self)
        self.confusion = ConfusionView(self)
        self.mistakes = ImageGallery(self)
        self.mistakes.show_message("Misclassified validation images appear here after "
                                   "each epoch.")
        self.tabs = QTabWidget(self)
        self.tabs.addTab(self.maps, "Feature maps")
        self.tabs.addTab(self.confusion, "Confusion")
        self.tabs.addTab(self.mistakes, "Mistakes")
        self.segmentation = SegmentationLive(self)  # its tab appears for segmentation runs
        self.detection = DetectionLive(self)        # and this one's for detection runs
        self.splitter = QSplitter(Qt.Orientation.Horizontal, self)
        self.splitter.addWidget(self.plots)
        self.splitter.addWidget(self.tabs)
        self.splitter.setStretchFactor(0, 2)
        self.splitter.setStretchFactor(1, 3)
        layout = QHBoxLayout(self)
        layout.addWidget(self.panel)
        layout.addWidget(self.splitter, 1)
        self.controller: TrainingController | None = None
        self.checkpoint: Path | None = None
        self.preview: DatasetPreview | None = None
        self._runs = 0
        self._processes = 1   # of the current run (nproc: 0 is one per GPU)
        self._init_note = ""
        self._selected: list[str] = []
        self._probe_shown = -1
        self._trained = TrainedCache()
        self._preview_source, self._preview_key = "", {}
        self.scout = DatasetScout(self)
        self.scout.previewed.connect(self._on_preview)
        self.scout.devices.connect(self.panel.set_devices)
        self.scout.download_progress.connect(self._on_download_progress)
        self.scout.downloaded.connect(self._on_downloaded)
        self.panel.start_requested.connect(self.start)
        self.panel.stop_requested.connect(self.stop)
        self.panel.pause_requested.connect(self._pause)
        self.panel.resume_requested.connect(self._resume)
        self.panel.settings_changed.connect(self._on_settings_edited)
        self.panel.fit_input_requested.connect(self.fit_input)
        self.panel.download_requested.connect(self.scout.download)
        self.maps.probe_requested.connect(self._on_probe_requested)
        self.segmentation.view.probe_requested.connect(self._on_probe_requested)
        self.detection.view.probe_requested.connect(self._on_probe_requested)
        canvas.selection_changed.connect(self._on_selection)
        doc.reset.connect(self._on_design_replaced)
        doc.training_changed.connect(self._on_training_changed)
        doc.analysis_changed.connect(self._check_fit)
        self._show_settings()
        # The first preview (and with it torch's import) waits until the window is up.
        self._first_preview = QTimer(self, singleShot=True, interval=300)
        self._first_preview.timeout.connect(self.request_preview)
        self._first_preview.start()

    # ---- settings and the dataset ------------------------------------------------------

    def _on_settings_edited(self, settings: dict) -> None:
        """Panel edits (one key each) are edits of the design (undoable, saved with the
        file); the preview follows from training_changed."""
        changed = "dataset" in settings and settings["dataset"] != self._dataset()
        # classes, limit and options belong to the dataset they were chosen for
        remove = DATASET_SPECIFIC if changed else ()
        if "init" not in settings:
            self.doc.set_training(settings, remove=remove)
            return
        # a checkpoint chosen or cleared is an undo step of its own, never merged
        if settings["init"] == "":   # no checkpoint: the key goes, as it was before
            settings, remove = {k: v for k, v in settings.items() if k != "init"}, ("init",)
        self.doc.end_edit()
        self.doc.set_training(settings, remove=remove)
        self.doc.end_edit()

    def _on_training_changed(self) -> None:
        self._show_settings()   # after an edit, undo or redo
        if (self._dataset(), self._data_settings()) != (self._preview_source,
                                                        self._preview_key):
            self.request_preview()

    def _dataset(self) -> str:
        """The dataset the design trains on: its ``training`` key's, else the default."""
        value = self.doc.graph.training.get("dataset")
        return value if isinstance(value, str) and value else setting("dataset").default

    def _on_design_replaced(self) -> None:
        self._show_settings()
        # Once the new design is on screen: the first preview imports torch in a thread,
        # which competing for the interpreter made opening a big design twice as slow.
        self._first_preview.start()

    def _show_settings(self) -> None:
        """The design's settings, with TrainConfig's defaults for what the file leaves
        out: the panel then shows what a run (and ``convas train``) would use."""
        self.panel.set_settings({**TrainConfig().to_dict(), **self.doc.graph.training})

    def _data_settings(self) -> dict:
        """What, besides its name, decides which images a run gets (the file's classes,
        limit, options), so the preview shows the very classes the run will train on."""
        keys = ("classes", "limit", "val_fraction", "seed", "dataset_options")
        return {k: self.doc.graph.training[k] for k in keys if k in self.doc.graph.training}

    def _input_shape(self) -> tuple[int, int, int] | None:
        report = self.doc.report
        shapes = [report.nodes[i].output_shape for i in report.input_ids]
        return tuple(shapes[0]) if shapes and shapes[0] is not None else None

    def request_preview(self) -> None:
        source = self._dataset()
        self._preview_source, self._preview_key = source, self._data_settings()
        if source:
            self.panel.dataset_info.setText(f"loading {source}…")
            self.scout.request(source, self._input_shape(), self._data_settings())

    def _on_preview(self, result) -> None:
        if result.source != self._dataset():
            return  # the choice changed meanwhile; its own preview is on the way
        if isinstance(result, PreviewFailure):
            self.preview = None
            self.panel.clear_fit()
            if result.downloadable:
                self.panel.show_dataset_problem(
                    f"{result.source} is not on this computer yet. Download it (needs the "
                    "network), or choose a folder that holds it.", download=True)
            else:
                self.panel.show_dataset_problem(result.message)
            return
        self.preview = result
        if result.boxes is not None:  # each sample with its boxes, their classes named
            self.panel.show_dataset(result.description,
                                    render_batch(result.images, result.boxes),
                                    [boxes_caption(b, result.classes) for b in result.boxes])
        elif result.masks is not None:  # each sample with its mask over it, every class named
            self.panel.show_dataset(result.description,
                                    overlay_batch(result.images, result.masks),
                                    [" + ".join(c for c in classes_present(m, result.classes)
                                                if c != result.classes[0]) or result.classes[0]
                                     for m in result.masks])
        else:
            self.panel.show_dataset(result.description, result.images,
                                    [result.classes[int(k)] for k in result.labels])
        self._check_fit()

    def _check_fit(self) -> None:
        if self.preview is None:
            return
        problem = fit_problem(self.doc, self.preview)
        if problem is None:
            self.panel.clear_fit()
        else:
            self.panel.offer_fit(fit_message(problem), fit_button_text(problem))

    def fit_input(self) -> bool:
        """Make the design take the dataset: one undoable edit of one block."""
        if self.preview is None or self.is_running:
            return False
        problem = fit_problem(self.doc, self.preview)
        if problem is None or not problem.changes:
            return False
        return self.doc.set_params(problem.block, problem.changes,
                                   f"Fit {problem.block} to {self.preview.source}")

    def _on_download_progress(self, name: str, done: int, total: int) -> None:
        self.panel.set_download_progress(
            f"downloading {name}… {done / 2**20:.1f}" + (f" / {total / 2**20:.1f}" if total
                                                         else "") + " MiB")

    def _on_downloaded(self, name: str, error: str) -> None:
        if error:
            self.panel.show_dataset_problem(f"Could not download {name}: {error}",
                                            download=True)
        else:
            self.request_preview()

    # ---- run control -------------------------------------------------------------------

    def start(self) -> bool:
        from .training import TrainingController

        if self.is_running:
            return False
        errors = self.doc.report.errors
        if errors:  # said at once, not after a child process has started to find it
            first = errors[0]
            self.panel.set_status(
                f"The design cannot train yet: {len(errors)} problem"
                f"{'s' if len(errors) != 1 else ''} (see the Problems list). First: "
                + (f"{first.node}: " if first.node else "") + first.message, error=True)
            return False
        if self.controller is None:
            self.controller = TrainingController(self)
            c = self.controller
            c.ready.connect(self._on_ready)
            c.step.connect(self._on_step)
            c.epoch.connect(self._on_epoch)
            c.feature_maps.connect(self._on_maps)
            c.prediction.connect(self._on_prediction)
            c.finished.connect(self._on_finished)
            c.running_changed.connect(self._on_running)
        try:  # the panel's edits are in the design; TrainConfig's defaults fill the rest
            config = TrainConfig.from_dict({**self.doc.graph.training, "probe_every": 0,
                                            "probe_seconds": PROBE_SECONDS})
        except ConfigError as exc:
            self.panel.set_status(str(exc), error=True)
            return False
        if config.init and not Path(config.init).is_file():
            self.panel.set_status(f"Start from weights: {config.init} is not there (moved or "
                                  f"deleted?). Choose the checkpoint again with Browse…, or "
                                  f"clear it (×) to start every block fresh.", error=True)
            return False
        try:  # kept in the user's data folder: a reboot must not take the checkpoint
            out = new_run_folder(self.doc.graph.name)
        except OSError as exc:
            self.panel.set_status(f"No folder for the run in {runs_folder()}: "
                                  f"{exc.strerror or exc}. Free some space there.", error=True)
            return False
        self._runs += 1
        self._init_note = ""
        self.plots.start_run(f"{self.doc.graph.name} #{self._runs}")
        self._probe_shown = -1
        self.confusion.clear()
        self.mistakes.show_message("Misclassified validation images appear here after "
                                   "each epoch.")
        self.segmentation.reset()
        self.detection.reset()
        self.panel.set_progress(0, 1, 0, 1, "starting…")
        self.panel.set_status("loading the data and building the network…")
        self._processes = config.nproc
        self.controller.start(self.doc.graph, config, out_dir=out,
                              probe_nodes=self._selected[:1] or self._default_probe())
        return True

    def _default_probe(self) -> list[str]:
        """With no block selected, the first convolution: the Feature maps tab then shows
        something from the first step, and selecting a block switches it."""
        graph = self.doc.graph
        for n in graph.topo_order() or []:
            if graph.type_of(n) in ("Conv2d", "ConvTranspose2d"):
                return [n]
        return []

    def stop(self) -> None:
        if self.controller is not None and self.controller.is_running:
            self.controller.stop()
            self.panel.set_status("stopping after this step…")

    def _pause(self) -> None:
        if self._processes != 1:  # a paused rank 0 would time the others out
            self.panel.set_status("Pause is not available while training on several "
                                  "processes (the others would time out waiting); Stop "
                                  "saves a checkpoint you can resume from.", error=True)
            return
        if self.controller is not None:
            self.controller.pause()
            self.panel.set_running(True, paused=True)
            self.panel.set_status("paused")

    def _resume(self) -> None:
        if self.controller is not None:
            self.controller.resume()
            self.panel.set_running(True)

    def stop_and_wait(self) -> None:
        """Before the window closes: stop a run, wait for its checkpoint, and join the
        thread that reads it (it outlives the run by the child's exit)."""
        if self.controller is not None:
            self.controller.wait(30_000)

    def shutdown(self) -> None:
        """The window is closing: end the run (keeping its checkpoint) and the
        background work, so no thread is left talking to Qt."""
        self._first_preview.stop()
        self.stop_and_wait()
        self.scout.close()

    @property
    def info(self):
        """The current (or last) run's ReadyEvent: classes, sizes, device, probes."""
        return self.controller.info if self.controller is not None else None

    @property
    def is_running(self) -> bool:
        return self.controller is not None and self.controller.is_running

    # ---- events ------------------------------------------------------------------------

    def _on_running(self, running: bool) -> None:
        self.panel.set_running(running)
        self.canvas.set_read_only(running, "Training: the design is locked while the run "
                                           "uses it. Stop the run to edit it again.")
        self.running_changed.emit(running)

    def _on_ready(self, e) -> None:
        # said for the whole run (below each status): what started from the checkpoint
        self._init_note = init_summary(e.init_loaded, e.init_fresh)
        self.segmentation.begin(e)
        self.detection.begin(e)
        self.maps.set_probe_count(len(e.probe_images), 0)
        self._show_probe(0)
        self.panel.set_status(f"training on {e.device}, {e.precision} · {e.train_size:,} "
                              f"training / {e.val_size:,} validation images"
                              + self._init_note)

    def _on_step(self, e) -> None:
        self.plots.add_step(e.global_step, e.loss, e.accuracy, e.lr)
        left = (e.total_steps - e.global_step) * e.elapsed / max(e.global_step, 1)
        epochs = e.total_steps // max(e.steps_per_epoch, 1)
        self.panel.set_progress(e.epoch - 1, epochs, e.step, e.steps_per_epoch,
                                f"epoch {e.epoch}/{epochs} · step {e.step}/{e.steps_per_epoch}")
        device = f" on {self.info.device}" if self.info is not None else ""
        accuracy = ("pixel accuracy" if self.segmentation.active else
                    "boxes found" if self.detection.active else "accuracy")
        self.panel.set_status(f"{e.images_per_s:,.0f} images/s{device} · {_duration(left)} "
                              f"left\nloss {e.loss:.4f} · {accuracy} {100 * e.accuracy:.1f}%"
                              + self._init_note)

    def _on_epoch(self, e) -> None:
        steps = self.info.steps_per_epoch if self.info is not None else 0
        self.plots.add_epoch(e.epoch * steps, e.epoch, e.train_loss, e.train_accuracy,
                             e.val_loss, e.val_accuracy)
        if self.segmentation.on_epoch(e) or self.detection.on_epoch(e):
            return
        classes = list(self.info.classes) if self.info is not None else []
        if e.confusion is not None and classes:
            self.confusion.set_matrix(e.confusion, classes, e.epoch)
            self._show_mistakes(e, classes)

    def _show_mistakes(self, e, classes: list[str]) -> None:
        total = int(e.confusion.sum())
        wrong = e.wrong_count or 0
        if not wrong or e.wrong_images is None:
            self.mistakes.show_message(misclassified_title(0, 0, total, e.epoch))
            return
        args = (e.wrong_true, e.wrong_predicted, classes, e.wrong_confidence)
        self.mistakes.set_images(e.wrong_images, misclassified_captions(*args),
                                 misclassified_title(len(e.wrong_images), wrong, total,
                                                     e.epoch),
                                 misclassified_tooltips(*args))

    def _on_maps(self, e) -> None:
        self.maps.show_maps(e.node, e.maps)
        self.maps.show_kernels(e.kernels)
        if e.probe_index != self._probe_shown:
            self._show_probe(e.probe_index)

    def _on_prediction(self, e) -> None:
        if e.probe_index != self._probe_shown:
            self._show_probe(e.probe_index)
        self.segmentation.show_prediction(e)
        self.detection.show_prediction(e)

    def _show_probe(self, index: int) -> None:
        if self.info is None or not len(self.info.probe_images):
            return
        count = len(self.info.probe_images)
        image = np.asarray(self.info.probe_images[min(index, count - 1)])
        self.maps.show_probe(image / 255.0 if image.dtype == np.uint8 else image)
        self.maps.set_probe_count(count, index)   # the other tab's choice shows here too
        self._probe_shown = index
        self.segmentation.show_probe(index)
        self.detection.show_probe(index)

    def _on_probe_requested(self, index: int) -> None:
        if self.is_running:
            self.controller.set_probe_index(index)
        elif self._selected:
            self.show_trained_maps(self._selected[0], index)
        self._show_probe(index)

    def _on_finished(self, event) -> None:
        from engine.train_events import DoneEvent

        self.checkpoint = event.checkpoint
        where = f"; checkpoint {event.checkpoint}" if event.checkpoint else ""
        if isinstance(event, DoneEvent):
            what = (f"stopped after {event.epochs_completed} epoch"
                    f"{'s' if event.epochs_completed != 1 else ''}" if event.stopped
                    else "done")
            summary = event.summary()
            self.panel.set_status(what + (f": {summary}" if summary else "") + where
                                  + self._init_note)
        else:
            # One message in the panel, never a dialog: a failing run must not pile up
            # windows, and the reason already says what to do.
            self.panel.set_status(event.reason, error=True)

    def _on_selection(self, ids: list[str]) -> None:
        # inside an open block the canvas's ids are the body's: the model knows them as
        # paths from the top design through the opened instances ("stage1/conv")
        ids = ["/".join((*self.doc.scope, i)) for i in ids]
        self._selected = list(ids)
        if not ids:
            return
        if self.is_running:
            self.controller.set_probe_nodes(ids[:1])  # the next probe switches the view
        else:
            self.show_trained_maps(ids[0])

    def show_trained_maps(self, node: str, probe: int | None = None) -> bool:
        """After a run: any block's maps for the probe image, from the checkpoint.
        False when there is no run, or the design changed so its weights no longer fit."""
        trained = self.trained()
        images = self.info.probe_images if self.info is not None else None
        if trained is None or images is None or not len(images):
            return False
        index = self._probe_shown if probe is None else probe
        index = min(max(index, 0), len(images) - 1)
        result = trained.maps(images, index, node)
        if result is None:
            return False
        self.maps.show_maps(node, result[0])
        self.maps.show_kernels(result[1])
        if index != self._probe_shown:
            self._show_probe(index)
        return True

    def trained(self) -> Trained | None:
        """The last run's weights if they fit the design as it is now."""
        return self._trained.get(self.checkpoint, self.doc.graph, self.doc.revision)


def init_summary(loaded: list[str], fresh: list[str], shown: int = 4) -> str:
    """After Start from weights: how many blocks took the checkpoint's weights and how
    many start fresh, naming the first few of each ("" for a run without a checkpoint)."""
    if not loaded and not fresh:
        return ""

    def some(ids: list[str]) -> str:
        more = f", … ({len(ids) - shown} more)" if len(ids) > shown else ""
        return f" ({', '.join(ids[:shown])}{more})" if ids else ""

    return (f"\nweights loaded for {len(loaded)} block{'s' if len(loaded) != 1 else ''}"
            f"{some(loaded)}; {len(fresh)} start{'s' if len(fresh) == 1 else ''} fresh"
            f"{some(fresh)}")


def _duration(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"
