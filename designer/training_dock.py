"""The Training dock: settings and controls, live curves, feature maps and the
confusion matrix of a run started from the editor.

The run trains a copy of the design in a worker thread (``designer.training``); the
canvas is read-only while it runs, and selecting a block switches the feature maps
to it without restarting. torch is imported on the first Start, not at start-up.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtWidgets import QHBoxLayout, QTabWidget, QWidget

from widgets.confusion import ConfusionView
from widgets.featuremaps import FeatureMapView
from widgets.plots import TrainingPlots
from widgets.training_panel import TrainingPanel

if TYPE_CHECKING:
    from .document import Document
    from .training import TrainingController

PROBE_EVERY = 10  # steps between feature-map probes during a run


class TrainingDock(QWidget):
    def __init__(self, doc: Document, canvas, parent=None) -> None:
        super().__init__(parent)
        self.doc, self.canvas = doc, canvas
        self.panel = TrainingPanel(self)
        self.plots = TrainingPlots(self)
        self.maps = FeatureMapView(self)
        self.confusion = ConfusionView(self)
        self.tabs = QTabWidget(self)
        self.tabs.addTab(self.plots, "Curves")
        self.tabs.addTab(self.maps, "Feature maps")
        self.tabs.addTab(self.confusion, "Confusion")
        layout = QHBoxLayout(self)
        layout.addWidget(self.panel)
        layout.addWidget(self.tabs, 1)
        self.controller: TrainingController | None = None
        self.checkpoint: Path | None = None
        self._runs = 0
        self._selected: list[str] = []
        self._probe_shown = -1
        self.panel.start_requested.connect(self.start)
        self.panel.stop_requested.connect(lambda: self.controller and self.controller.stop())
        self.panel.pause_requested.connect(self._pause)
        self.panel.resume_requested.connect(self._resume)
        canvas.selection_changed.connect(self._on_selection)
        doc.reset.connect(lambda: self.panel.set_settings(doc.graph.training))
        self.panel.set_settings(doc.graph.training)

    # ---- run control -------------------------------------------------------------------

    def start(self) -> bool:
        from engine.train_config import ConfigError, TrainConfig

        from .training import TrainingController

        if self.controller is None:
            self.controller = TrainingController(self)
            c = self.controller
            c.step.connect(self._on_step)
            c.epoch.connect(self._on_epoch)
            c.feature_maps.connect(self._on_maps)
            c.finished.connect(self._on_finished)
            c.running_changed.connect(self._on_running)
        try:
            config = TrainConfig.from_dict({**self.doc.graph.training, **self.panel.settings(),
                                            "probe_every": PROBE_EVERY})
        except ConfigError as exc:
            self.panel.set_status(str(exc), error=True)
            return False
        self._runs += 1
        out = Path(tempfile.gettempdir()) / "convas-runs" / time.strftime("%Y%m%d-%H%M%S")
        self.plots.start_run(f"{self.doc.graph.name} #{self._runs}")
        self._probe_shown = -1
        self.confusion.clear()
        self.panel.set_status("preparing the data…")
        self.controller.start(self.doc.graph, config, out_dir=out,
                              probe_nodes=self._selected[:1])
        return True

    def _pause(self) -> None:
        if self.controller is not None:
            self.controller.pause()
            self.panel.set_running(True, paused=True)

    def _resume(self) -> None:
        if self.controller is not None:
            self.controller.resume()
            self.panel.set_running(True)

    def stop_and_wait(self) -> None:
        """Before the window closes: stop a run and wait for its checkpoint."""
        if self.controller is not None and self.controller.is_running:
            self.controller.wait(30_000)

    @property
    def is_running(self) -> bool:
        return self.controller is not None and self.controller.is_running

    # ---- events ------------------------------------------------------------------------

    def _on_running(self, running: bool) -> None:
        self.panel.set_running(running)
        self.canvas.set_read_only(running)

    def _on_step(self, e) -> None:
        self.plots.add_step(e.global_step, e.loss, e.accuracy, e.lr)
        left = (e.total_steps - e.global_step) * e.elapsed / max(e.global_step, 1)
        self.panel.set_progress(e.epoch - 1, e.total_steps // e.steps_per_epoch, e.step,
                                e.steps_per_epoch,
                                f"epoch {e.epoch} · {e.images_per_s:,.0f} img/s · "
                                f"{left:.0f} s left")
        self.panel.set_status(f"loss {e.loss:.4f} · accuracy {100 * e.accuracy:.1f}%")

    def _on_epoch(self, e) -> None:
        trainer = self.controller.trainer if self.controller else None
        step = e.epoch * (trainer.train_batches.__len__() if trainer else 0)
        self.plots.add_epoch(step, e.epoch, e.train_loss, e.train_accuracy, e.val_loss,
                             e.val_accuracy)
        if e.confusion is not None and trainer is not None:
            self.confusion.set_matrix(e.confusion, list(trainer.dataset.classes), e.epoch)

    def _on_maps(self, e) -> None:
        self.maps.show_maps(e.node, e.maps)
        trainer = self.controller.trainer if self.controller else None
        if trainer is not None and e.probe_index != self._probe_shown:
            # the probe image as the network sees it (normalised), next to its maps
            self.maps.show_probe(trainer.probe_x[e.probe_index].float().cpu().numpy())
            self._probe_shown = e.probe_index

    def _on_finished(self, event) -> None:
        from engine.train_events import DoneEvent

        self.checkpoint = event.checkpoint
        if isinstance(event, DoneEvent):
            last = event.metrics[-1] if event.metrics else {}
            acc = last.get("val_accuracy")
            self.panel.set_status(("stopped" if event.stopped else "done")
                                  + (f": validation accuracy {100 * acc:.1f}%"
                                     if acc is not None else ""))
        else:
            self.panel.set_status(event.reason, error=True)

    def _on_selection(self, ids: list[str]) -> None:
        self._selected = list(ids)
        if self.controller is not None and ids:
            self.controller.set_probe_nodes(ids[:1])
