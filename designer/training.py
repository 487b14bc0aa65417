"""Run one engine.train.Trainer in a worker thread and report through throttled Qt signals.

The trainer calls a plain callback in its own thread. The controller keeps only what
the GUI needs from that traffic: step events are coalesced to the latest one and
delivered at most ~20 times a second, feature maps at most ~2 times a second per node,
while epoch and final events are always delivered, in order, in the GUI thread.
"""

from __future__ import annotations

import threading
import time
import traceback
from collections.abc import Iterable
from pathlib import Path

from PySide6.QtCore import QCoreApplication, QObject, Qt, QThread, QTimer, Signal

from engine.data import Dataset
from engine.graph import Graph
from engine.train import Trainer
from engine.train_config import TrainConfig
from engine.train_events import DoneEvent, EpochEvent, FailedEvent, FeatureMapEvent, StepEvent

STEP_INTERVAL_MS = 50          # at most ~20 step signals per second
FEATURE_MAP_INTERVAL = 0.5     # seconds between feature-map signals for one node


class _TrainerThread(QThread):
    """Runs ``trainer.run()``; never lets an exception escape."""

    def __init__(self, trainer: Trainer, on_error) -> None:
        super().__init__()
        self.trainer = trainer
        self._on_error = on_error

    def run(self) -> None:
        try:
            self.trainer.run()
        except BaseException as exc:  # noqa: BLE001 - the callback or run itself failed
            self._on_error(FailedEvent("error", f"unexpected {type(exc).__name__}: {exc}",
                                       details=traceback.format_exc()))


class TrainingController(QObject):
    """Owns at most one training run; create it in the GUI thread."""

    step = Signal(object)            # StepEvent
    epoch = Signal(object)           # EpochEvent
    feature_maps = Signal(object)    # FeatureMapEvent
    finished = Signal(object)        # DoneEvent or FailedEvent
    running_changed = Signal(bool)

    _event = Signal(int, object)     # worker thread → GUI thread (queued)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._trainer: Trainer | None = None
        self._thread: _TrainerThread | None = None
        self._run_id = 0
        self._active = False
        self._probe_nodes: tuple[str, ...] = ()
        self._lock = threading.Lock()
        self._pending_step: StepEvent | None = None
        self._pending_maps: dict[str, FeatureMapEvent] = {}
        self._map_sent: dict[str, float] = {}
        self._event.connect(self._on_event, Qt.ConnectionType.QueuedConnection)
        self._timer = QTimer(self)
        self._timer.setInterval(STEP_INTERVAL_MS)
        self._timer.timeout.connect(self._flush)

    # ---- state -----------------------------------------------------------------------

    @property
    def is_running(self) -> bool:
        return self._active

    @property
    def trainer(self) -> Trainer | None:
        return self._trainer

    @property
    def is_paused(self) -> bool:
        return self._active and self._trainer is not None and self._trainer.paused

    # ---- control ---------------------------------------------------------------------

    def start(self, graph: Graph, config: TrainConfig, out_dir: str | Path | None = None,
              dataset: Dataset | None = None, probe_nodes: Iterable[str] = (), *,
              resume: str | Path | None = None, report_interval: float = 0.1) -> Trainer:
        """Start training a copy of ``graph``; RuntimeError while a run is active."""
        if self._active:
            raise RuntimeError("a training run is already active; stop it first")
        self._join_previous()
        self._run_id += 1
        run_id = self._run_id
        self._probe_nodes = tuple(probe_nodes)
        with self._lock:
            self._pending_step = None
            self._pending_maps.clear()
        self._map_sent.clear()

        def callback(event) -> None:  # worker thread
            self._from_worker(run_id, event)

        trainer = Trainer(graph.copy(), config, callback=callback, out_dir=out_dir,
                          resume=resume, dataset=dataset, probe_nodes=self._probe_nodes,
                          report_interval=report_interval)
        thread = _TrainerThread(trainer, lambda event: self._event.emit(run_id, event))
        self._trainer, self._thread, self._active = trainer, thread, True
        self._timer.start()
        thread.start()
        self.running_changed.emit(True)
        return trainer

    def stop(self) -> None:
        if self._trainer is not None:
            self._trainer.stop()

    def pause(self) -> None:
        if self._active and self._trainer is not None:
            self._trainer.pause()

    def resume(self) -> None:
        if self._trainer is not None:
            self._trainer.resume()

    def set_probe_nodes(self, nodes: Iterable[str]) -> None:
        self._probe_nodes = tuple(nodes)
        if self._trainer is not None:
            self._trainer.set_probe_nodes(self._probe_nodes)

    def wait(self, timeout_ms: int = 30_000) -> bool:
        """Stop the run and join its thread; True when no thread is left running.

        The final event is delivered (synchronously) if the thread ended in time.
        """
        self.stop()
        thread = self._thread
        if thread is None:
            return True
        if not thread.wait(max(0, int(timeout_ms))):
            return False
        # The final event may still be queued; deliver it now so callers see the end.
        QCoreApplication.sendPostedEvents(self)
        if self._active:  # the thread ended without a final event
            self._finish(FailedEvent("error", "the training thread ended without a result"))
        return True

    # ---- worker thread side ----------------------------------------------------------

    def _from_worker(self, run_id: int, event) -> None:
        if isinstance(event, StepEvent):
            with self._lock:
                if run_id == self._run_id:
                    self._pending_step = event
        elif isinstance(event, FeatureMapEvent):
            with self._lock:
                if run_id == self._run_id:
                    self._pending_maps[event.node] = event
        else:
            self._event.emit(run_id, event)

    # ---- GUI thread side -------------------------------------------------------------

    def _flush(self, final: bool = False) -> None:
        now = time.monotonic()
        with self._lock:
            step, self._pending_step = self._pending_step, None
            maps = [m for node, m in self._pending_maps.items()
                    if final or now - self._map_sent.get(node, -1e9) >= FEATURE_MAP_INTERVAL]
            for m in maps:
                del self._pending_maps[m.node]
        if step is not None:
            self.step.emit(step)
        for m in maps:
            self._map_sent[m.node] = now
            self.feature_maps.emit(m)

    def _on_event(self, run_id: int, event) -> None:
        if run_id != self._run_id or not self._active:
            return  # from an earlier run, or already delivered by wait()
        if isinstance(event, EpochEvent):
            self._flush()
            self.epoch.emit(event)
        elif isinstance(event, DoneEvent | FailedEvent):
            self._flush(final=True)
            self._finish(event)

    def _finish(self, event: DoneEvent | FailedEvent) -> None:
        self._active = False
        self._timer.stop()
        if self._thread is not None:
            self._thread.wait(5_000)  # run() returns right after its final callback
        self.finished.emit(event)
        self.running_changed.emit(False)

    def _join_previous(self) -> None:
        if self._thread is not None:
            self._thread.wait()
            self._thread = None
