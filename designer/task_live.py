"""What the Training dock's task views (``segmentation_live``, ``detection_live``) share:
a "Prediction" tab holding the task's probe view beside its per-epoch curves, which
exists only while the dock shows a run of that task (ReadyEvent.task); the probe choice
(during a run the next probe brings the prediction, after it the checkpoint does); and
reading the trained network's output for a probe.

Written once so that the two tabs appear, go, reset and follow the theme alike; each
task adds what its tab shows and what it does to the rest of the dock.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from PySide6.QtCore import QObject, Qt
from PySide6.QtWidgets import QSplitter

from widgets.epoch_plot import EpochPlot
from widgets.probe_view import ProbeView

if TYPE_CHECKING:
    from engine.train_events import EpochEvent, ReadyEvent

    from .training_dock import TrainingDock

PREDICTION_TAB = "Prediction"


class TaskLive(QObject):
    """Owns one task's probe view and curves and feeds them from the controller's
    events; ``active`` while the run shown is of ``TASK``."""

    TASK = ""
    WORST_MESSAGE = ""     # the gallery's sentence before the run's first epoch

    def __init__(self, dock: TrainingDock, view: ProbeView, curves: EpochPlot) -> None:
        super().__init__(dock)
        self.dock = dock
        self.view = view
        self.curves = curves
        # side by side: the dock is wide and low, and the curves read against the probe
        self.page = QSplitter(Qt.Orientation.Horizontal)
        self.page.addWidget(self.view)
        self.page.addWidget(self.curves)
        self.page.setStretchFactor(0, 3)
        self.page.setStretchFactor(1, 2)
        self.active = False
        self._classes: list[str] = []
        self._val_size = 0

    # ---- a run begins ----------------------------------------------------------------

    def reset(self) -> None:
        """Start pressed: the previous run's prediction and curves go (the tab stays
        until the new run says its task, a second later, so the dock does not flicker)."""
        if self.active:
            self.view.clear()
            self._start_curves()
            self.dock.mistakes.show_message(self.WORST_MESSAGE)

    def begin(self, info: ReadyEvent) -> None:
        """The run's data are loaded: show this task's views, or take them away."""
        dock = self.dock
        self.active = info.task == self.TASK
        self._classes = [str(c) for c in info.classes]
        self._val_size = info.val_size
        index = dock.tabs.indexOf(self.page)
        if self.active:
            if index < 0:
                dock.tabs.insertTab(0, self.page, PREDICTION_TAB)
                self.page.setSizes([3000, 2000])   # proportions: the probe gets three fifths
            dock.tabs.setCurrentWidget(self.page)
            self.view.set_classes(self._classes)
            self.view.set_probes(info.probe_images, info.probe_targets)
            self._start_curves()
            self.curves.set_dark(dock.plots.is_dark())   # the theme the window gave the plots
            dock.mistakes.show_message(self.WORST_MESSAGE)
        else:
            if index >= 0:
                dock.tabs.removeTab(index)
            self.view.clear()
            self.curves.clear()

    # ---- during the run --------------------------------------------------------------

    def show_probe(self, index: int) -> None:
        """Another probe image was chosen (here or in the Feature maps tab). During a run
        its prediction comes with the next probe; after it, from the checkpoint."""
        if not self.active:
            return
        self.view.show_probe(index)
        if not self.dock.is_running:
            self.predict_from_checkpoint(self.view.probe_index())

    def on_epoch(self, e: EpochEvent) -> bool:
        """The epoch's curves and gallery; False when the run is not of this task (the
        dock then shows it as a classifier's)."""
        if not self.active:
            return False
        self._show_epoch(e)
        return True

    # ---- after the run ---------------------------------------------------------------

    def predict_from_checkpoint(self, index: int) -> bool:
        """The trained network's prediction for probe ``index`` shown; False when there
        is none (no checkpoint, or weights that no longer fit the design)."""
        raise NotImplementedError

    def _output_maps(self, index: int) -> np.ndarray | None:
        """The trained network's output for probe ``index``, [C,H,W] (the block feeding
        the Output); None without a checkpoint or when it no longer fits the design."""
        dock = self.dock
        trained, info = dock.trained(), dock.info
        if trained is None or info is None or not len(info.probe_images):
            return None
        graph = dock.doc.graph
        outputs = [n for n in graph.topo_order() or [] if graph.type_of(n) == "Output"]
        sources = [src for _, src in graph.inputs_of(outputs[0])] if outputs else []
        if not sources:
            return None
        result = trained.maps(info.probe_images, index, sources[0])
        if result is None or np.ndim(result[0]) != 3:
            return None
        return np.asarray(result[0])

    # ---- for the task ----------------------------------------------------------------

    def _start_curves(self) -> None:
        """Empty curves for a new run of this task."""
        raise NotImplementedError

    def _show_epoch(self, e: EpochEvent) -> None:
        raise NotImplementedError
