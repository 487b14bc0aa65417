"""The training controller: a Trainer in a child process, read by a worker thread,
reported through throttled signals in the GUI thread."""

from __future__ import annotations

import os
import signal
import time
from importlib import resources

import numpy as np
import pytest
import torch
from PySide6.QtCore import QThread, QTimer
from PySide6.QtWidgets import QApplication

from designer.training import TrainingController
from engine import Graph
from engine.analysis import analyze
from engine.checkpoint import load_checkpoint
from engine.data import load_dataset
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

torch.set_num_threads(1)
TIMEOUT = 30_000


def xo_graph() -> Graph:
    path = resources.files("resources") / "templates" / "x_vs_o.convas.json"
    return Graph.load(str(path))


@pytest.fixture(scope="module")
def xo_data():
    return load_dataset("shapes", classes=["X", "O"], options={"count": 300})


@pytest.fixture
def controller(qtbot):
    ctl = TrainingController()
    yield ctl
    assert ctl.wait(TIMEOUT)


def config(**kw) -> TrainConfig:
    return TrainConfig(**{"epochs": 1, "batch_size": 32, "device": "cpu", "probe_every": 2,
                          **kw})


class Recorder:
    """Records each signal with the thread it was delivered in."""

    def __init__(self, ctl: TrainingController) -> None:
        self.events: dict[str, list] = {"ready": [], "step": [], "epoch": [], "feature_maps": [],
                                        "prediction": [], "finished": [],
                                        "running_changed": []}
        self.threads: set = set()
        for name, items in self.events.items():
            getattr(ctl, name).connect(self._slot(items))

    def _slot(self, items: list):
        def slot(value) -> None:
            self.threads.add(QThread.currentThread())
            items.append(value)
        return slot

    def __getitem__(self, name: str) -> list:
        return self.events[name]


def test_run_delivers_signals_in_the_gui_thread(qtbot, controller, xo_data):
    rec = Recorder(controller)
    with qtbot.waitSignal(controller.finished, timeout=TIMEOUT) as blocker:
        controller.start(xo_graph(), config(epochs=2), dataset=xo_data)
        assert controller.is_running
    done = blocker.args[0]
    (ready,) = rec["ready"]
    assert isinstance(ready, ReadyEvent) and controller.info is ready
    assert ready.classes == ["X", "O"] and ready.image_shape == (1, 32, 32)
    assert ready.train_size == len(xo_data.train) and ready.val_size == len(xo_data.val)
    assert ready.steps_per_epoch == -(-len(xo_data.train) // 32)
    assert ready.device.startswith("CPU") and ready.precision == "fp32"
    assert ready.probe_images.shape[1:] == (1, 32, 32)
    assert isinstance(done, DoneEvent) and not done.stopped and done.epochs_completed == 2
    assert rec.threads == {QApplication.instance().thread()}
    assert rec["step"] and all(isinstance(e, StepEvent) for e in rec["step"])
    assert [e.epoch for e in rec["epoch"]] == [1, 2]
    assert all(isinstance(e, EpochEvent) for e in rec["epoch"])
    assert rec["running_changed"] == [True, False]
    assert not controller.is_running
    assert rec["prediction"] == []                   # predicted masks: segmentation only
    # the last step of the run arrives before the last epoch
    assert rec["step"][-1].global_step == rec["step"][-1].total_steps


def test_step_signals_are_throttled(qtbot, controller, xo_data):
    rec = Recorder(controller)
    t0 = time.monotonic()
    with qtbot.waitSignal(controller.finished, timeout=TIMEOUT):
        controller.start(xo_graph(), config(epochs=3, batch_size=8, probe_every=0),
                         dataset=xo_data, report_interval=0)   # a StepEvent every step
    seconds = time.monotonic() - t0
    delivered = rec["step"]
    total_steps = delivered[-1].total_steps
    assert 0 < len(delivered) < total_steps
    assert len(delivered) <= seconds * 20 + 3 + 3   # ~20/s, plus a flush per epoch/end
    globals_ = [e.global_step for e in delivered]
    assert globals_ == sorted(set(globals_)) and globals_[-1] == total_steps


def test_feature_maps_for_requested_node(qtbot, controller, xo_data):
    rec = Recorder(controller)
    graph = xo_graph()
    t0 = time.monotonic()
    with qtbot.waitSignal(controller.finished, timeout=TIMEOUT):
        controller.start(graph, config(epochs=2, batch_size=8, probe_every=1),
                         dataset=xo_data, probe_nodes=["conv1"])
    seconds = time.monotonic() - t0
    maps = rec["feature_maps"]
    assert maps and all(isinstance(m, FeatureMapEvent) for m in maps)
    assert {m.node for m in maps} == {"conv1"}
    assert maps[0].maps.shape == tuple(analyze(graph).nodes["conv1"].output_shape)
    # probed every step, but throttled to ~2 per second per node (plus the final flush)
    assert len(maps) < maps[-1].global_step
    assert len(maps) <= seconds * 2 + 2
    assert [m.global_step for m in maps] == sorted({m.global_step for m in maps})


def test_probe_nodes_can_change_during_a_run(qtbot, controller, xo_data):
    rec = Recorder(controller)
    controller.start(xo_graph(), config(epochs=3, batch_size=8), dataset=xo_data,
                     report_interval=0)
    controller.set_probe_nodes(["relu2"])
    qtbot.waitSignal(controller.finished, timeout=TIMEOUT).wait()
    qtbot.waitUntil(lambda: not controller.is_running, timeout=TIMEOUT)
    assert "relu2" in {m.node for m in rec["feature_maps"]}


def test_stop_mid_run_keeps_gui_responsive(qtbot, controller, xo_data):
    rec = Recorder(controller)
    ticks = []
    timer = QTimer()
    timer.setInterval(10)
    timer.timeout.connect(lambda: ticks.append(time.monotonic()))
    timer.start()
    controller.start(xo_graph(), config(epochs=200, batch_size=8), dataset=xo_data,
                     report_interval=0)
    qtbot.waitUntil(lambda: len(rec["step"]) >= 3, timeout=TIMEOUT)
    controller.pause()
    assert controller.is_paused
    paused_ticks = len(ticks)
    qtbot.wait(200)
    assert len(ticks) > paused_ticks + 5
    controller.resume()
    with qtbot.waitSignal(controller.finished, timeout=TIMEOUT) as blocker:
        controller.stop()
    timer.stop()
    done = blocker.args[0]
    assert isinstance(done, DoneEvent) and done.stopped and done.epochs_completed < 200
    assert not controller.is_running and rec["running_changed"] == [True, False]
    assert len(ticks) >= 10
    gaps = [b - a for a, b in zip(ticks, ticks[1:], strict=False)]
    assert max(gaps) < 2.0                           # the main thread never froze


def test_start_while_running_raises(qtbot, controller, xo_data):
    controller.start(xo_graph(), config(epochs=200), dataset=xo_data)
    with pytest.raises(RuntimeError):
        controller.start(xo_graph(), config(), dataset=xo_data)
    assert controller.wait(TIMEOUT)
    assert not controller.is_running
    # a new run can start once the previous one has ended
    with qtbot.waitSignal(controller.finished, timeout=TIMEOUT) as blocker:
        controller.start(xo_graph(), config(), dataset=xo_data)
    assert isinstance(blocker.args[0], DoneEvent) and not blocker.args[0].stopped


def test_wait_delivers_the_final_event(qtbot, controller, xo_data):
    rec = Recorder(controller)
    controller.start(xo_graph(), config(epochs=200), dataset=xo_data)
    assert controller.wait(TIMEOUT)
    assert len(rec["finished"]) == 1 and rec["finished"][0].stopped
    qtbot.wait(50)                                   # a queued duplicate is ignored
    assert len(rec["finished"]) == 1
    assert rec["running_changed"] == [True, False]


def test_editing_the_original_graph_does_not_change_the_run(qtbot, controller, xo_data,
                                                           tmp_path):
    graph = xo_graph()
    with qtbot.waitSignal(controller.finished, timeout=TIMEOUT) as blocker:
        controller.start(graph, config(epochs=2), out_dir=tmp_path, dataset=xo_data)
        graph.set_param("conv1", "out_channels", 4)
        graph.remove_node("fc")
    done = blocker.args[0]
    assert isinstance(done, DoneEvent) and not done.stopped
    saved = load_checkpoint(done.checkpoint)
    assert saved["state_dict"]["conv1.weight"].shape[0] == 8
    assert "fc.weight" in saved["state_dict"]


def test_probe_image_can_change_during_a_run(qtbot, controller, xo_data):
    rec = Recorder(controller)
    controller.start(xo_graph(), config(epochs=200, batch_size=8, probe_every=1),
                     dataset=xo_data, probe_nodes=["conv1"])
    qtbot.waitUntil(lambda: bool(rec["feature_maps"]), timeout=TIMEOUT)
    assert rec["feature_maps"][0].probe_index == 0
    controller.set_probe_index(3)
    qtbot.waitUntil(lambda: rec["feature_maps"][-1].probe_index == 3, timeout=TIMEOUT)
    assert rec["feature_maps"][-1].kernels.shape == (8, 1, 3, 3)  # conv1's kernels
    assert controller.wait(TIMEOUT)


def test_a_killed_training_process_is_reported_not_hung(qtbot, controller, xo_data):
    rec = Recorder(controller)
    controller.start(xo_graph(), config(epochs=200, batch_size=8), dataset=xo_data)
    qtbot.waitUntil(lambda: bool(rec["step"]), timeout=TIMEOUT)
    os.kill(controller._process._process.pid, signal.SIGKILL)  # as the OOM killer would
    qtbot.waitUntil(lambda: bool(rec["finished"]), timeout=TIMEOUT)
    failed = rec["finished"][0]
    assert isinstance(failed, FailedEvent) and "killed by signal 9" in failed.reason
    assert "smaller batch size" in failed.reason
    assert not controller.is_running and rec["running_changed"] == [True, False]


def test_failure_arrives_as_failed_event(qtbot, controller, xo_data):
    graph = xo_graph()
    graph.remove_node("fc")                          # the graph no longer analyses
    with qtbot.waitSignal(controller.finished, timeout=TIMEOUT) as blocker:
        controller.start(graph, config(), dataset=xo_data)
    assert type(blocker.args[0]).__name__ == "FailedEvent"
    assert not controller.is_running


def test_predicted_masks_are_throttled_and_the_last_one_delivered(qtbot, controller):
    """A segmentation run probed at every step: its predicted masks come at most about
    twice a second, and the last one (the run's final weights) always arrives."""
    path = resources.files("resources") / "templates" / "unet_shapes.convas.json"
    graph = Graph.load(str(path))
    data = load_dataset("shapes-seg", options={"count": 40})
    rec = Recorder(controller)
    t0 = time.monotonic()
    with qtbot.waitSignal(controller.finished, timeout=60_000):
        controller.start(graph, config(epochs=2, batch_size=4, probe_every=1), dataset=data)
    seconds = time.monotonic() - t0
    masks = rec["prediction"]
    total = rec["step"][-1].total_steps
    assert masks and all(isinstance(m, PredictionEvent) for m in masks)
    assert len(masks) < total and len(masks) <= seconds * 2 + 2
    steps = [m.global_step for m in masks]
    assert steps == sorted(set(steps)) and steps[-1] == total
    assert masks[-1].class_map.shape == (64, 64) and masks[-1].class_map.dtype == np.uint8
