"""Run one training in a child process and report through throttled Qt signals.

The trainer lives in ``engine.train_process`` (a process, so the GUI's redraws never
hold the interpreter lock a training step waits for); a worker thread here reads its
events and hands them to the GUI thread as queued signals carrying plain data. Step
events are coalesced to the latest one and delivered at most ~20 times a second,
feature maps at most ~2 times a second per node and a segmentation's predicted mask at
most ~2 times a second (the latest ones; each run's last is delivered with the final
event), while the ready, epoch and final events are always delivered, in order.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from PySide6.QtCore import QCoreApplication, QObject, Qt, QThread, QTimer, Signal

from engine.data import Dataset
from engine.graph import Graph
from engine.train_config import TrainConfig
from engine.train_events import (
    DoneEvent,
    EpochEvent,
    FailedEvent,
    FeatureMapEvent,
    PredictionEvent,
    ReadyEvent,
    StepEvent,
)
from engine.train_process import TrainingProcess, died_event

STEP_INTERVAL_MS = 50          # at most ~20 step signals per second
FEATURE_MAP_INTERVAL = 0.5     # seconds between feature-map signals for one node
PREDICTION_INTERVAL = 0.5      # seconds between predicted-mask signals


class _EventReader(QThread):
    """Reads the child's events until its final one, or notices that it died."""

    def __init__(self, process: TrainingProcess, deliver: Callable[[object], None],
                 checkpoint: Path | None) -> None:
        super().__init__()
        self.process = process
        self._deliver = deliver
        self._checkpoint = checkpoint

    def run(self) -> None:
        final = False
        while not final:
            if self.process.poll(0.25):
                try:
                    event = self.process.recv()
                except EOFError:
                    break
                self._deliver(event)
                final = isinstance(event, DoneEvent | FailedEvent)
            elif not self.process.is_alive() and not self.process.poll(0):
                break
        self.process.join(10)
        if not final:
            ckpt = self._checkpoint if self._checkpoint and self._checkpoint.exists() else None
            self._deliver(died_event(self.process.exitcode, ckpt))
        self.process.close()


class TrainingController(QObject):
    """Owns at most one training run; create it in the GUI thread."""

    ready = Signal(object)           # ReadyEvent: data loaded, model built
    step = Signal(object)            # StepEvent
    epoch = Signal(object)           # EpochEvent
    feature_maps = Signal(object)    # FeatureMapEvent
    prediction = Signal(object)      # PredictionEvent (segmentation)
    finished = Signal(object)        # DoneEvent or FailedEvent
    running_changed = Signal(bool)

    _event = Signal(int, object)     # worker thread → GUI thread (queued)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._process: TrainingProcess | None = None
        self._thread: _EventReader | None = None
        self._paused = False
        self.info: ReadyEvent | None = None
        self._run_id = 0
        self._active = False
        self._probe_nodes: tuple[str, ...] = ()
        self._lock = threading.Lock()
        self._pending_step: StepEvent | None = None
        self._pending_maps: dict[str, FeatureMapEvent] = {}
        self._map_sent: dict[str, float] = {}
        self._pending_prediction: PredictionEvent | None = None
        self._prediction_sent = -1e9
        self._event.connect(self._on_event, Qt.ConnectionType.QueuedConnection)
        self._timer = QTimer(self)
        self._timer.setInterval(STEP_INTERVAL_MS)
        self._timer.timeout.connect(self._flush)

    # ---- state -----------------------------------------------------------------------

    @property
    def is_running(self) -> bool:
        return self._active

    @property
    def is_paused(self) -> bool:
        return self._active and self._paused

    # ---- control ---------------------------------------------------------------------

    def start(self, graph: Graph, config: TrainConfig, out_dir: str | Path | None = None,
              dataset: Dataset | None = None, probe_nodes: Iterable[str] = (), *,
              resume: str | Path | None = None, report_interval: float = 0.1,
              threads: int | None = None) -> None:
        """Start training ``graph`` (as it is now) in a child process; RuntimeError while
        a run is active. ``threads``: torch's CPU threads there (None: its default)."""
        if self._active:
            raise RuntimeError("a training run is already active; stop it first")
        self._join_previous()
        self._run_id += 1
        run_id = self._run_id
        self._probe_nodes = tuple(probe_nodes)
        with self._lock:
            self._pending_step = None
            self._pending_maps.clear()
            self._pending_prediction = None
        self._map_sent.clear()
        self._prediction_sent = -1e9
        self.info = None
        self._paused = False
        process = TrainingProcess(graph, config, out_dir=out_dir, resume=resume,
                                  dataset=dataset, probe_nodes=self._probe_nodes,
                                  report_interval=report_interval, threads=threads)
        checkpoint = Path(out_dir) / "model.pt" if out_dir is not None else None
        thread = _EventReader(process, lambda event: self._from_worker(run_id, event),
                              checkpoint)
        self._process, self._thread, self._active = process, thread, True
        self._timer.start()
        thread.start()
        self.running_changed.emit(True)

    def _send(self, command: str, argument=None) -> None:
        if self._active and self._process is not None:
            self._process.send(command, argument)

    def stop(self) -> None:
        self._paused = False
        self._send("stop")

    def pause(self) -> None:
        if self._active:
            self._paused = True
            self._send("pause")

    def resume(self) -> None:
        self._paused = False
        self._send("resume")

    def set_probe_nodes(self, nodes: Iterable[str]) -> None:
        self._probe_nodes = tuple(nodes)
        self._send("probe_nodes", self._probe_nodes)

    def set_probe_index(self, index: int) -> None:
        """Show the feature maps for another of the validation probe images."""
        self._send("probe_index", int(index))

    def wait(self, timeout_ms: int = 30_000) -> bool:
        """Stop the run and join its thread; True when no thread is left running.

        A child that does not stop in time is killed (its last checkpoint stays). The
        final event is delivered (synchronously) if the thread ended.
        """
        self.stop()
        thread = self._thread
        if thread is None:
            return True
        if not thread.wait(max(0, int(timeout_ms))):
            if self._process is not None:
                self._process.kill()
            if not thread.wait(10_000):
                return False
        # The final event may still be queued; deliver it now so callers see the end.
        QCoreApplication.sendPostedEvents(self)
        if self._active:  # the thread ended without a final event
            self._finish(FailedEvent("error", "the training thread ended without a result"))
        return True

    # ---- worker thread side ----------------------------------------------------------

    def _from_worker(self, run_id: int, event) -> None:  # the reader thread
        if isinstance(event, StepEvent):
            with self._lock:
                if run_id == self._run_id:
                    self._pending_step = event
        elif isinstance(event, FeatureMapEvent):
            with self._lock:
                if run_id == self._run_id:
                    self._pending_maps[event.node] = event
        elif isinstance(event, PredictionEvent):
            with self._lock:
                if run_id == self._run_id:
                    self._pending_prediction = event
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
            prediction = None
            if final or now - self._prediction_sent >= PREDICTION_INTERVAL:
                prediction, self._pending_prediction = self._pending_prediction, None
        if step is not None:
            self.step.emit(step)
        for m in maps:
            self._map_sent[m.node] = now
            self.feature_maps.emit(m)
        if prediction is not None:
            self._prediction_sent = now
            self.prediction.emit(prediction)

    def _on_event(self, run_id: int, event) -> None:
        if run_id != self._run_id or not self._active:
            return  # from an earlier run, or already delivered by wait()
        if isinstance(event, ReadyEvent):
            self.info = event
            self.ready.emit(event)
        elif isinstance(event, EpochEvent):
            self._flush()
            self.epoch.emit(event)
        elif isinstance(event, DoneEvent | FailedEvent):
            self._flush(final=True)
            self._finish(event)

    def _finish(self, event: DoneEvent | FailedEvent) -> None:
        self._active = False
        self._paused = False
        self._timer.stop()  # the reader thread ends by itself once the child has exited
        self.finished.emit(event)
        self.running_changed.emit(False)

    def _join_previous(self) -> None:
        if self._thread is not None:
            self._thread.wait()
            self._thread = None
