"""Training on several processes from the application (SPEC §10): the Device menu offers
CPU processes, a run of two started from the Training dock shows live curves as a run
of one does, Pause is refused with a reason, Stop ends every process, and a rank that
dies is named in the dock."""

from __future__ import annotations

import os
import signal
import sys
import time

import PySide6  # noqa: F401  (Qt before pyqtgraph, always)
import pytest
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest

from designer.templates import template_files
from engine import Graph
from engine.device import available_devices
from engine.train_config import TrainConfig, device_choice, split_device_choice

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"),
                                reason="counts the run's processes in /proc")


def _processes() -> dict[int, tuple[int, str]]:
    """The live (not zombie) processes: pid → (parent pid, command line)."""
    found = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat") as f:
                state, ppid = f.read().rsplit(")", 1)[1].split()[:2]
            with open(f"/proc/{name}/cmdline", "rb") as f:
                command = f.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if state != "Z":
            found[int(name)] = (int(ppid), command)
    return found


def _ranks(launcher: int) -> list[int]:
    """The ranks the training child (the launcher) started."""
    return sorted(pid for pid, (ppid, command) in _processes().items()
                  if ppid == launcher and "engine.train_ranks" in command)


def _gone(pids: list[int]) -> bool:
    return not set(pids) & set(_processes())


def test_device_menu_offers_processes_and_they_map_to_nproc(monkeypatch):
    items = dict(available_devices())
    assert items["cpu*2"] == "2 processes (CPU)"
    assert split_device_choice("cpu*2") == ("cpu", 2)
    assert split_device_choice("cuda*gpu") == ("cuda", 0)
    assert split_device_choice("cpu") == ("cpu", 1)
    for device, nproc in (("cpu", 1), ("cpu", 4), ("cuda", 0)):
        assert split_device_choice(device_choice(device, nproc)) == (device, nproc)
    monkeypatch.setattr(os, "cpu_count", lambda: 4)
    assert "cpu*4" in dict(available_devices())
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    assert "cpu*4" not in dict(available_devices())
    assert TrainConfig().nproc == 1


def test_gpu_entry_where_cuda_has_gpus(monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 3)
    monkeypatch.setattr("engine.device.describe_device", lambda device: "Some GPU (8.0 GiB)")
    assert dict(available_devices())["cuda*gpu"].startswith("all GPUs (3")


def _xo(window, epochs: int) -> None:
    f = next(f for f in template_files() if f.name == "x_vs_o.convas.json")
    window.doc.new_from(Graph.loads(f.read_text("utf-8"), f.name))
    window.doc.set_training({"limit": 384, "batch_size": 32})
    window.training.panel.epochs.setValue(epochs)


def _choose_two_processes(dock, qtbot) -> None:
    device = dock.panel.device
    qtbot.waitUntil(lambda: device.findData("cpu*2") >= 0, timeout=30_000)  # the scout's
    device.setCurrentIndex(device.findData("cpu*2"))                       # list arrived


def test_two_process_run_from_the_dock_shows_curves_and_stop_ends_every_process(
        window, qtbot, monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    dock = window.training
    _xo(window, epochs=30)  # longer than the test waits: Stop ends it
    _choose_two_processes(dock, qtbot)
    training = window.doc.graph.training
    assert (training["device"], training["nproc"]) == ("cpu", 2)

    QTest.mouseClick(dock.panel.start_button, Qt.MouseButton.LeftButton)
    controller = dock.controller
    assert controller is not None and controller.is_running
    epochs, finished = [], []
    controller.epoch.connect(epochs.append)
    controller.finished.connect(finished.append)
    child = controller._process.pid
    qtbot.waitUntil(lambda: len(_ranks(child)) == 2 or bool(finished), timeout=30_000)
    assert not finished, getattr(finished[0], "reason", finished)
    ranks = _ranks(child)
    qtbot.waitUntil(lambda: bool(epochs) or bool(finished), timeout=60_000)
    assert not finished, getattr(finished[0], "reason", finished)
    assert dock.plots.point_count() > 0 and epochs[0].val_accuracy is not None
    qtbot.waitUntil(lambda: dock.confusion.overall_accuracy() is not None, timeout=10_000)
    rows, cols = dock.maps.tile_grid()  # rank 0 probes conv1, as one process does
    assert rows * cols >= 8

    QTest.mouseClick(dock.panel.pause_button, Qt.MouseButton.LeftButton)
    assert "not available" in dock.panel.status.text() and not controller.is_paused

    QTest.mouseClick(dock.panel.stop_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: bool(finished), timeout=60_000)
    done = finished[0]
    assert type(done).__name__ == "DoneEvent", getattr(done, "reason", "")
    assert done.stopped and done.checkpoint is not None and done.checkpoint.exists()
    assert not window.training.is_running
    qtbot.waitUntil(lambda: _gone([child, *ranks]), timeout=15_000)  # nothing left behind


def test_a_rank_that_dies_is_named_in_the_dock(window, qtbot, monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    dock = window.training
    _xo(window, epochs=30)
    _choose_two_processes(dock, qtbot)
    QTest.mouseClick(dock.panel.start_button, Qt.MouseButton.LeftButton)
    finished, steps = [], []
    dock.controller.finished.connect(finished.append)
    dock.controller.step.connect(steps.append)
    child = dock.controller._process.pid
    qtbot.waitUntil(lambda: bool(steps) or bool(finished), timeout=60_000)
    assert not finished, getattr(finished[0], "reason", finished)
    ranks = _ranks(child)
    assert len(ranks) == 2
    # which process is rank 1: the launcher tells each through its environment
    rank1 = next(pid for pid in ranks if _environ(pid).get("RANK") == "1")
    os.kill(rank1, signal.SIGKILL)
    started = time.monotonic()
    qtbot.waitUntil(lambda: bool(finished), timeout=60_000)
    assert time.monotonic() - started < 45
    failed = finished[0]
    assert type(failed).__name__ == "FailedEvent"
    assert "rank 1 failed" in failed.reason and "SIGKILL" in failed.reason
    assert "rank 1 failed" in dock.panel.status.text()
    qtbot.waitUntil(lambda: _gone([child, *ranks]), timeout=15_000)


def _environ(pid: int) -> dict[str, str]:
    with open(f"/proc/{pid}/environ", "rb") as f:
        pairs = [item.split(b"=", 1) for item in f.read().split(b"\0") if b"=" in item]
    return {k.decode(errors="replace"): v.decode(errors="replace") for k, v in pairs}


def test_panel_keeps_device_and_processes_apart_in_the_file(qtbot):
    from widgets.training_panel import TrainingPanel

    panel = TrainingPanel()
    qtbot.addWidget(panel)
    panel.set_devices([("auto", "auto"), ("cpu", "CPU"), ("cpu*2", "2 processes (CPU)")])
    panel.set_settings({"device": "cpu", "nproc": 2})
    assert panel.device.currentText() == "2 processes (CPU)"
    assert (panel.settings()["device"], panel.settings()["nproc"]) == ("cpu", 2)
    with qtbot.waitSignal(panel.settings_changed, timeout=1000) as blocker:
        panel.device.setCurrentIndex(panel.device.findData("cpu"))
    assert blocker.args[0] == {"device": "cpu", "nproc": 1}   # back to one process
    assert "nproc" not in panel.settings()
    panel.set_settings({"device": "cpu", "nproc": 3})  # from a file: an entry of its own
    assert (panel.settings()["device"], panel.settings()["nproc"]) == ("cpu", 3)


def test_the_files_nproc_reaches_convas_train(tmp_path, capsys):
    import json

    import torch

    from designer.cli import main

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU: the run would start")
    f = next(f for f in template_files() if f.name == "x_vs_o.convas.json")
    data = json.loads(f.read_text("utf-8"))
    data.setdefault("training", {})["nproc"] = 0       # one per GPU, as the menu stores it
    path = tmp_path / "xo.convas.json"
    path.write_text(json.dumps(data), "utf-8")
    assert main(["train", str(path), "--out", str(tmp_path / "out")]) == 1
    assert "no CUDA GPU" in capsys.readouterr().err
