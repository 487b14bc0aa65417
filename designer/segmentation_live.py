"""The Training dock's views of a segmentation run: the predicted mask of a probe image
overlaid on it beside the true mask, per-class IoU and mIoU curves, the pixel
confusion matrix, and the validation images with the lowest IoU.

Kept apart from ``training_dock`` (which stays about running and classification) so
that neither file grows past what one can read. The "Prediction" tab exists only while
the dock shows a segmentation run (ReadyEvent.task, see ``task_live``); a classification
run removes it and the dock looks as it always did.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from widgets.iou_plot import IoUPlot
from widgets.segmentation import (
    SegmentationView,
    overlay_batch,
    worst_iou_captions,
    worst_iou_title,
    worst_iou_tooltips,
)

from .task_live import TaskLive

if TYPE_CHECKING:
    from engine.train_events import EpochEvent, PredictionEvent, ReadyEvent

    from .training_dock import TrainingDock

SEGMENTATION = "segmentation"
GALLERY_TABS = {"classification": "Mistakes", SEGMENTATION: "Worst IoU"}
WORST_MESSAGE = ("The validation images with the lowest IoU appear here after each "
                 "epoch, their predicted masks overlaid.")


class SegmentationLive(TaskLive):
    """Owns the segmentation widgets and feeds them from the controller's events."""

    TASK = SEGMENTATION
    WORST_MESSAGE = WORST_MESSAGE

    def __init__(self, dock: TrainingDock) -> None:
        curves = IoUPlot()
        super().__init__(dock, SegmentationView(), curves)
        self.iou = curves   # the name the window and the tests know it by

    def begin(self, info: ReadyEvent) -> None:
        """The run's data are loaded: show the segmentation views, or take them away;
        the gallery and the accuracy curve are named for the run's task either way."""
        super().begin(info)
        dock = self.dock
        dock.tabs.setTabText(dock.tabs.indexOf(dock.mistakes),
                             GALLERY_TABS[SEGMENTATION if self.active else "classification"])
        dock.plots.set_accuracy_label("pixel accuracy" if self.active else "accuracy")

    # ---- during the run --------------------------------------------------------------

    def show_prediction(self, event: PredictionEvent) -> None:
        if self.active:
            self.view.show_prediction(event.class_map, event.probe_index, event.global_step,
                                      event.confidence)

    def _start_curves(self) -> None:
        self.iou.start(self._classes)

    def _show_epoch(self, e: EpochEvent) -> None:
        """The epoch's IoU curves, pixel confusion matrix and worst images."""
        self.iou.add_epoch(e.epoch, e.iou, e.miou)
        if e.confusion is not None and len(e.confusion) == len(self._classes):
            self.dock.confusion.set_matrix(e.confusion, self._classes, e.epoch, pixels=True)
        self._show_worst(e)

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

    def predict_from_checkpoint(self, index: int) -> bool:
        """The trained network's mask for probe ``index`` (argmax over the classes of
        the block feeding the Output); False when the weights no longer fit the design."""
        logits = self._output_maps(index)
        if logits is None:
            return False
        self.view.show_prediction(logits.argmax(axis=0).astype(np.uint8), index)
        return True
