"""The Training dock's segmentation views fed with hand-made events (no training): the
Prediction tab comes with a segmentation run and goes with a classification run, which
then looks as it always did; an epoch fills the curves, the pixel matrix and the
worst-IoU gallery."""

from __future__ import annotations

import numpy as np
import PySide6  # noqa: F401  (Qt before pyqtgraph, always)
import pytest

from engine.train_events import EpochEvent, PredictionEvent, ReadyEvent
from widgets.iou_plot import MIOU

CLASSES = ["background", "X", "O"]


def ready(task: str, classes=CLASSES) -> ReadyEvent:
    images = np.zeros((4, 1, 16, 16), np.uint8)
    targets = np.zeros((4, 16, 16), np.uint8) if task == "segmentation" else None
    if targets is not None:
        targets[:, 4:8, 4:8] = 1
    return ReadyEvent("shapes-seg", list(classes), 80, 20, (1, 16, 16), 5, 3, 0, "CPU",
                      "fp32", images, task, targets)


def epoch_event(epoch: int) -> EpochEvent:
    worst_true = np.zeros((2, 16, 16), np.uint8)
    worst_true[:, :8] = 1
    worst_predicted = np.zeros((2, 16, 16), np.uint8)
    worst_predicted[1, :, :8] = 2
    confusion = np.array([[4000, 100, 20], [200, 900, 0], [0, 0, 0]])
    metrics = {"val_pixel_accuracy": 0.9, "val_miou": 0.61, "val_iou_background": 0.92,
               "val_iou_X": 0.3, "val_iou_O": None}
    return EpochEvent(epoch, 3, 0.5, 0.8, 0.6, 0.9, confusion, 1.0, 1e-3, task="segmentation",
                      metrics=metrics, worst_images=np.zeros((2, 1, 16, 16), np.uint8),
                      worst_true=worst_true, worst_predicted=worst_predicted,
                      worst_iou=np.array([0.1, 0.25]))


@pytest.fixture
def dock(window):
    return window.training


def test_a_segmentation_run_gets_the_prediction_tab_and_a_classifier_loses_it(dock):
    live = dock.segmentation
    assert dock.tabs.indexOf(live.page) < 0                  # no run yet: as it always was
    assert dock.tabs.tabText(dock.tabs.indexOf(dock.mistakes)) == "Mistakes"
    live.begin(ready("segmentation"))
    assert dock.tabs.currentWidget() is live.page
    assert dock.tabs.tabText(0) == "Prediction"
    assert dock.tabs.tabText(dock.tabs.indexOf(dock.mistakes)) == "Worst IoU"
    assert dock.plots.accuracy_label() == "pixel accuracy"
    assert live.iou.curve_names() == [*CLASSES, MIOU]

    live.show_prediction(PredictionEvent(7, 2, np.ones((16, 16), np.uint8)))
    assert live.view.probe_index() == 2 and live.view.predicted_mask().max() == 1

    assert live.on_epoch(epoch_event(1))
    assert live.iou.curve_data("X")[1].tolist() == [0.3]
    assert len(live.iou.curve_data("O")[0]) == 0             # None: no point
    assert live.iou.curve_data(MIOU)[1].tolist() == [0.61]
    assert dock.confusion.counts_pixels()
    assert dock.mistakes.captions() == ["IoU 0.10", "IoU 0.25"]
    assert "Predicted: background, O" in dock.mistakes.tooltips()[1]
    assert "the 2 of 20 validation images" in dock.mistakes.title()

    live.begin(ready("classification", ["cat", "dog"]))      # the next run classifies
    assert dock.tabs.indexOf(live.page) < 0 and not live.active
    assert dock.tabs.tabText(dock.tabs.indexOf(dock.mistakes)) == "Mistakes"
    assert dock.plots.accuracy_label() == "accuracy"
    assert not live.on_epoch(epoch_event(1))                 # the dock shows it as before
    assert live.view.predicted_mask() is None and live.iou.curve_names() == []



def test_a_segmentation_preview_shows_each_sample_with_its_mask_and_classes(dock):
    from designer.dataset_preview import DatasetPreview
    from widgets.segmentation import colour_of

    images = np.full((2, 1, 16, 16), 40, np.uint8)
    masks = np.zeros((2, 16, 16), np.uint8)
    masks[0, :4, :4], masks[0, 8:, 8:] = 1, 2
    masks[1, 2:6, 2:6] = 2
    dock._on_preview(DatasetPreview(dock._dataset(), "shapes-seg: 2 images", (1, 16, 16),
                                    CLASSES, images, np.array([1, 2]), "segmentation", masks))
    gallery = dock.panel.preview
    assert gallery.captions() == ["X + O", "O"]  # every class in the mask, not one
    shown = gallery.thumbnail(0).scaled(16, 16).pixelColor(1, 1)
    grey = gallery.thumbnail(0).scaled(16, 16).pixelColor(6, 1)
    assert (shown.red(), shown.green(), shown.blue()) != (grey.red(), grey.green(), grey.blue())
    assert grey.red() == grey.green() == grey.blue() == 40       # background: the image
    assert colour_of(1)[0] > colour_of(1)[1]                    # X's colour is reddish
    assert shown.red() > shown.green()


def test_the_iou_and_map_plots_follow_a_theme_switch(window):
    iou, map_plot = window.training.segmentation.iou, window.training.detection.map
    window.set_theme(True)
    assert iou.is_dark() and map_plot.is_dark() and window.training.plots.is_dark()
    window.set_theme(False)
    assert not iou.is_dark() and not map_plot.is_dark()
    window.set_theme(None)  # back to the system's, as the other tests have it
    assert iou.is_dark() is map_plot.is_dark() is window.training.plots.is_dark()
