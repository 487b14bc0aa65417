"""The Training dock's views of a detection run: the probe image with the boxes the
network finds (about twice a second) over its true boxes, mAP@0.5 and mAP@0.5:0.95 per
epoch, and the validation images with the most missed and false boxes.

The twin of ``segmentation_live``: its "Prediction" tab exists only while the dock shows
a detection run (ReadyEvent.task), and any other run takes it away again. After the run
another probe image gets its boxes from the checkpoint, decoded as the trainer and
``convas predict`` decode them (engine.detection.yolo.detect).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from widgets.detection_view import (
    DetectionView,
    render_batch,
    worst_box_captions,
    worst_box_title,
    worst_box_tooltips,
)
from widgets.map_plot import MapPlot

from .task_live import TaskLive

if TYPE_CHECKING:
    from engine.train_events import EpochEvent, PredictionEvent, ReadyEvent

    from .training_dock import TrainingDock

DETECTION = "detection"
GALLERY_TAB = "Worst boxes"
ACCURACY_LABEL = "boxes found / val mAP@0.5"   # the step curve, and the epochs' mAP@0.5
SHOWN_SCORE = 0.25       # the live view's threshold (engine.tasks.detection.SHOWN_SCORE)
WORST_MESSAGE = ("The validation images with the most missed and false boxes appear "
                 "here after each epoch, their boxes drawn.")


class DetectionLive(TaskLive):
    """Owns the detection widgets and feeds them from the controller's events."""

    TASK = DETECTION
    WORST_MESSAGE = WORST_MESSAGE

    def __init__(self, dock: TrainingDock) -> None:
        curves = MapPlot()
        super().__init__(dock, DetectionView(), curves)
        self.map = curves   # the name the window and the tests know it by

    def begin(self, info: ReadyEvent) -> None:
        """The run's data are loaded: show the detection views, or take them away.
        Called after SegmentationLive.begin, whose tab names it overrides when active."""
        dock = self.dock
        # a detector has no confusion matrix (its errors are missed and false boxes: the
        # gallery shows them), so its tab is hidden for the run rather than left blank
        dock.tabs.setTabVisible(dock.tabs.indexOf(dock.confusion), info.task != DETECTION)
        super().begin(info)
        if self.active:
            dock.tabs.setTabText(dock.tabs.indexOf(dock.mistakes), GALLERY_TAB)
            dock.plots.set_accuracy_label(ACCURACY_LABEL)
            dock.confusion.clear()

    # ---- during the run --------------------------------------------------------------

    def show_prediction(self, event: PredictionEvent) -> None:
        if self.active and event.boxes is not None:
            self.view.show_prediction(event.boxes, event.scores, event.labels,
                                      event.probe_index, event.global_step)

    def _start_curves(self) -> None:
        self.map.start()

    def _show_epoch(self, e: EpochEvent) -> None:
        """The epoch's mAP points and worst images."""
        self.map.add_epoch(e.epoch, e.metrics.get("val_map50"), e.metrics.get("val_map"))
        self._show_worst(e)

    def _show_worst(self, e: EpochEvent) -> None:
        gallery = self.dock.mistakes
        if e.worst_images is None or e.worst_true_boxes is None \
                or e.worst_detections is None or not len(e.worst_images):
            gallery.show_message(worst_box_title(0, self._val_size, e.epoch))
            return
        errors = (np.asarray(e.worst_errors).reshape(-1, 2) if e.worst_errors is not None
                  else np.zeros((len(e.worst_images), 2), np.int64))
        gallery.set_images(render_batch(e.worst_images, e.worst_true_boxes,
                                        e.worst_detections),
                           worst_box_captions(errors),
                           worst_box_title(len(e.worst_images), self._val_size, e.epoch),
                           worst_box_tooltips(e.worst_true_boxes, e.worst_detections,
                                              self._classes))

    # ---- after the run ---------------------------------------------------------------

    def predict_from_checkpoint(self, index: int) -> bool:
        """The trained network's boxes for probe ``index`` (the head feeding the Output,
        decoded with the Output's anchors); False when the weights no longer fit."""
        maps = self._output_maps(index)
        if maps is None:
            return False
        import torch

        from engine.detection.yolo import detect
        from engine.tasks import output_anchors

        dock = self.dock
        try:
            (boxes, scores, labels), = detect(
                torch.as_tensor(maps)[None].float(),
                output_anchors(dock.doc.report), tuple(dock.info.image_shape[1:]),
                len(self._classes), score_threshold=SHOWN_SCORE)
        except (ValueError, RuntimeError):   # the head no longer fits the classes
            return False
        self.view.show_prediction(boxes.numpy(), scores.numpy(), labels.numpy(), index)
        return True
