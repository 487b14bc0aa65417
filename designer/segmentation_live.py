"""The Training dock's views of a segmentation run: the predicted mask of a probe image
overlaid on it beside the true mask, per-class IoU and mIoU curves, the pixel
confusion matrix, and the validation images with the lowest IoU.

Kept apart from ``training_dock`` (which stays about running and classification) so
that neither file grows past what one can read. The "Prediction" tab exists only while
the dock shows a segmentation run (ReadyEvent.task); a classification run removes it
and the dock looks as it always did.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from PySide6.QtCore import QObject, Qt
from PySide6.QtWidgets import QSplitter

from widgets.iou_plot import IoUPlot
from widgets.segmentation import (
    SegmentationView,
    overlay_batch,
    worst_iou_captions,
    worst_iou_title,
    worst_iou_tooltips,
)

if TYPE_CHECKING:
    from engine.train_events import EpochEvent, PredictionEvent, ReadyEvent

    from .training_dock import TrainingDock

SEGMENTATION = "segmentation"
PREDICTION_TAB = "Prediction"
GALLERY_TABS = {"classification": "Mistakes", SEGMENTATION: "Worst IoU"}
WORST_MESSAGE = ("The validation images with the lowest IoU appear here after each "
                 "epoch, their predicted masks overlaid.")


class SegmentationLive(QObject):
    """Owns the segmentation widgets and feeds them from the controller's events."""

    def __init__(self, dock: TrainingDock) -> None:
        super().__init__(dock)
        self.dock = dock
        self.view = SegmentationView()
        self.iou = IoUPlot()
        # side by side: the dock is wide and low, and the curves read against the masks
        self.page = QSplitter(Qt.Orientation.Horizontal)
        self.page.addWidget(self.view)
        self.page.addWidget(self.iou)
        self.page.setStretchFactor(0, 3)
        self.page.setStretchFactor(1, 2)
        self.active = False        # the run shown is a segmentation
        self._classes: list[str] = []
        self._val_size = 0

    # ---- a run begins ----------------------------------------------------------------

    def reset(self) -> None:
        """Start pressed: the previous run's masks and curves go (the tab stays until
        the new run says its task, a second later, so the dock does not flicker)."""
        if self.active:
            self.view.clear()
            self.iou.start(self._classes)
            self.dock.mistakes.show_message(WORST_MESSAGE)

    def begin(self, info: ReadyEvent) -> None:
        """The run's data are loaded: show the segmentation views, or take them away."""
        dock = self.dock
        self.active = info.task == SEGMENTATION
        self._classes = [str(c) for c in info.classes]
        self._val_size = info.val_size
        index = dock.tabs.indexOf(self.page)
        if self.active:
            if index < 0:
                dock.tabs.insertTab(0, self.page, PREDICTION_TAB)
                self.page.setSizes([3000, 2000])   # proportions: the masks get three fifths
            dock.tabs.setCurrentWidget(self.page)
            self.view.set_classes(self._classes)
            self.view.set_probes(info.probe_images, info.probe_targets)
            self.iou.start(self._classes)
            self.iou.set_dark(dock.plots.is_dark())   # the theme the window gave the plots
            dock.mistakes.show_message(WORST_MESSAGE)
        else:
            if index >= 0:
                dock.tabs.removeTab(index)
            self.view.clear()
            self.iou.clear()
        dock.tabs.setTabText(dock.tabs.indexOf(dock.mistakes),
                             GALLERY_TABS[SEGMENTATION if self.active else "classification"])
        dock.plots.set_accuracy_label("pixel accuracy" if self.active else "accuracy")

    # ---- during the run --------------------------------------------------------------

    def show_prediction(self, event: PredictionEvent) -> None:
        if self.active:
            self.view.show_prediction(event.class_map, event.probe_index, event.global_step,
                                      event.confidence)

    def show_probe(self, index: int) -> None:
        """Another probe image was chosen (here or in the Feature maps tab). During a run
        its prediction comes with the next probe; after it, from the checkpoint."""
        if not self.active:
            return
        self.view.show_probe(index)
        if not self.dock.is_running:
            self._predict_from_checkpoint(self.view.probe_index())

    def on_epoch(self, e: EpochEvent) -> bool:
        """The epoch's IoU curves, pixel confusion matrix and worst images; False when
        the run is not a segmentation (the dock then shows it as a classifier's)."""
        if not self.active:
            return False
        self.iou.add_epoch(e.epoch, e.iou, e.miou)
        if e.confusion is not None and len(e.confusion) == len(self._classes):
            self.dock.confusion.set_matrix(e.confusion, self._classes, e.epoch, pixels=True)
        self._show_worst(e)
        return True

    def _show_worst(self, e: EpochEvent) -> None:
        gallery = self.dock.mistakes
        if e.worst_images is None or e.worst_true is None or e.worst_predicted is None \
                or not len(e.worst_images):
            gallery.show_message(f"Epoch {e.epoch}: no validation images to rank by IoU.")
            return
        iou = (np.asarray(e.worst_iou, dtype=np.float64) if e.worst_iou is not None
               else np.full(len(e.worst_images), np.nan))
        gallery.set_images(overlay_batch(e.worst_images, e.worst_predicted),
                           worst_iou_captions(iou),
                           worst_iou_title(len(e.worst_images), self._val_size, e.epoch),
                           worst_iou_tooltips(e.worst_true, e.worst_predicted, iou,
                                              self._classes))

    # ---- after the run ---------------------------------------------------------------

    def _predict_from_checkpoint(self, index: int) -> bool:
        """The trained network's mask for probe ``index`` (the block feeding the Output,
        argmax over its classes); False when the weights no longer fit the design."""
        dock = self.dock
        trained, info = dock.trained(), dock.info
        if trained is None or info is None or not len(info.probe_images):
            return False
        graph = dock.doc.graph
        outputs = [n for n in graph.topo_order() or [] if graph.type_of(n) == "Output"]
        sources = [src for _, src in graph.inputs_of(outputs[0])] if outputs else []
        if not sources:
            return False
        result = trained.maps(info.probe_images, index, sources[0])
        if result is None or np.ndim(result[0]) != 3:
            return False
        logits = np.asarray(result[0])
        self.view.show_prediction(logits.argmax(axis=0).astype(np.uint8), index)
        return True
