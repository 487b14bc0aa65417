"""Shared by the tests that train from the Training dock: set a short CPU run in the
panel and press Start as a person would, then wait for the run's end."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor
from PySide6.QtTest import QTest


def one_cpu_epoch(dock, batch_size: int | None = None) -> None:
    """One epoch on the CPU (and ``batch_size``), set in the panel: edits of the design."""
    dock.panel.epochs.setValue(1)
    if batch_size is not None:
        dock.panel.batch_size.setValue(batch_size)
    dock.panel.device.setCurrentIndex(dock.panel.device.findData("cpu"))


def train_from_dock(dock, qtbot, predictions: list | None = None,
                    timeout: int = 120_000):
    """Click Start and wait for the run to finish; returns its DoneEvent (failing with
    the reason when the run failed). ``predictions`` collects the probe predictions the
    controller delivers."""
    finished = []
    QTest.mouseClick(dock.panel.start_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: dock.controller is not None, timeout=5000)
    if predictions is not None:
        dock.controller.prediction.connect(predictions.append)
    dock.controller.finished.connect(finished.append)
    qtbot.waitUntil(lambda: bool(finished), timeout=timeout)
    assert type(finished[0]).__name__ == "DoneEvent", getattr(finished[0], "reason", "")
    return finished[0]


def one_epoch_from_dock(window, qtbot, graph, dataset: str) -> tuple:
    """``graph`` opened and trained for one CPU epoch in batches of 16 from the dock
    (its training data must be ``dataset``): the dock, and the probe predictions the
    controller delivered."""
    window.doc.new_from(graph)
    dock = window.training
    one_cpu_epoch(dock, batch_size=16)
    assert window.doc.graph.training["dataset"] == dataset
    predictions: list = []
    train_from_dock(dock, qtbot, predictions)
    return dock, predictions


def pixel(image, x: int, y: int) -> tuple[int, int, int]:
    """The (r, g, b) a QImage holds at (x, y)."""
    c = QColor(image.pixel(x, y))
    return c.red(), c.green(), c.blue()
