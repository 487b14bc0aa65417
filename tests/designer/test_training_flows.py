"""Training flows driven from the main window as a person drives them: Stop in mid-run,
a diverging run, the settings as undoable edits of the file's ``training`` key, the
dataset preview, the Input fit offer, the Mistakes gallery and the device list.

Every run trains the X-vs-O template on a few hundred synthetic images in a spawned
child process (a couple of seconds to start), on the CPU.
"""

from __future__ import annotations

import json
import time

import PySide6  # noqa: F401  (Qt before pyqtgraph, always)
import pytest
import torch
from PySide6.QtCore import Qt, QTimer
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication, QDialog, QDockWidget, QMessageBox

from designer.templates import template_files
from engine import Graph, compile_graph
from engine.checkpoint import load_checkpoint
from engine.data.shapes import CLASSES as SHAPES_CLASSES
from engine.train import Trainer
from engine.train_config import TrainConfig
from engine.train_events import DoneEvent, FailedEvent

torch.set_num_threads(1)

LEFT = Qt.MouseButton.LeftButton
CTRL = Qt.KeyboardModifier.ControlModifier
SHIFT = Qt.KeyboardModifier.ShiftModifier
WAIT = 60_000           # ms; generous, machines are noisy
SMALL = {"dataset_options": {"count": 300}, "device": "cpu"}   # 240 train / 60 val


def xo_graph(**training) -> Graph:
    f = next(f for f in template_files() if f.name == "x_vs_o.convas.json")
    graph = Graph.loads(f.read_text("utf-8"), f.name)
    graph.training.update(training)
    return graph


@pytest.fixture
def dock(window):
    """The Training dock, raised so its widgets are visible; runs write under the test's
    data folder (tests/designer/conftest.py). Leaves no run and no preview thread behind."""
    window.findChild(QDockWidget, "dock_training").raise_()
    d = window.training
    yield d
    if d.controller is not None:
        assert d.controller.wait(30_000)
        assert not d.controller.is_running
    d.scout.wait(30)


def open_xo(window, **training):
    """Open the X-vs-O template with these training settings (a clean document)."""
    window.doc.new_from(xo_graph(**training))
    QApplication.processEvents()
    return window.training


def wait_for_preview(qtbot, dock) -> None:
    qtbot.waitUntil(lambda: dock.panel.preview.count() > 0, timeout=WAIT)


def start_from_gui(qtbot, dock) -> list:
    """Click Start; returns the list the run's final event will be appended to."""
    finished: list = []
    assert dock.panel.start_button.isEnabled()
    QTest.mouseClick(dock.panel.start_button, LEFT)
    assert dock.controller is not None and dock.controller.is_running
    dock.controller.finished.connect(finished.append)
    return finished


def off_diagonal_sum(confusion) -> int:
    k = confusion.table().rowCount()
    assert k > 0, "the confusion matrix is empty"
    return sum(int(confusion.cell_text(r, c)) for r in range(k) for c in range(k) if r != c)


def key(window, k, mods) -> None:
    QTest.keyClick(window.canvas.viewport(), k, mods)
    QApplication.processEvents()


# ---- 1. Stop in mid-run -------------------------------------------------------------------

def test_stop_button_mid_run_keeps_gui_responsive_and_leaves_a_loadable_checkpoint(
        window, dock, qtbot):
    open_xo(window, **SMALL, epochs=200, batch_size=8)
    assert window.doc.set_param("relu1", "function", "leaky_relu")   # something to undo
    ticks: list[float] = []
    timer = QTimer()
    timer.setInterval(10)
    timer.timeout.connect(lambda: ticks.append(time.monotonic()))
    timer.start()
    try:
        finished = start_from_gui(qtbot, dock)
        steps: list = []
        dock.controller.step.connect(steps.append)
        qtbot.waitUntil(lambda: len(steps) >= 3, timeout=WAIT)
        assert window.canvas.read_only is True            # no edits while it runs
        assert not dock.panel.start_button.isEnabled() and dock.panel.stop_button.isEnabled()
        # ... and it says so, and nothing else can edit the design either
        assert window.canvas.banner.isVisible() and "locked" in window.canvas.banner.text()
        assert not window.inspector.isEnabled()
        assert not window.undo_action.isEnabled()
        before = window.doc.to_dict()
        key(window, Qt.Key.Key_Z, CTRL)                    # undo is refused, not queued
        window.canvas.select(["conv2"])                   # selecting still works
        key(window, Qt.Key.Key_Delete, Qt.KeyboardModifier.NoModifier)
        assert window.doc.to_dict() == before
        assert not window.train_action.isEnabled() and window.stop_action.isEnabled()
        QTest.mouseClick(dock.panel.stop_button, LEFT)
        qtbot.waitUntil(lambda: bool(finished), timeout=WAIT)
    finally:
        timer.stop()
    done = finished[0]
    assert isinstance(done, DoneEvent), getattr(done, "reason", done)
    assert done.stopped and done.epochs_completed < 200
    assert "stopped" in dock.panel.status.text().lower()
    assert not dock.panel.status.property("error")
    # the GUI never froze: the 10 ms timer kept ticking all along
    assert len(ticks) >= 10
    gaps = [b - a for a, b in zip(ticks, ticks[1:], strict=False)]
    assert max(gaps) < 2.0
    # editable again, ready for another run
    assert window.canvas.read_only is False
    assert not window.canvas.banner.isVisible() and window.inspector.isEnabled()
    assert window.undo_action.isEnabled() and window.train_action.isEnabled()
    assert dock.panel.start_button.isEnabled() and not dock.panel.stop_button.isEnabled()
    assert not dock.is_running
    # the weights of the stopped run: a checkpoint that fits the design
    assert dock.checkpoint is not None and dock.checkpoint.is_file()
    assert dock.checkpoint == done.checkpoint
    saved = load_checkpoint(dock.checkpoint)
    assert saved["epoch"] == done.epochs_completed
    model = compile_graph(window.doc.graph)
    model.load_state_dict(saved["state_dict"], strict=True)
    floats = [v for v in saved["state_dict"].values() if v.is_floating_point()]
    assert floats and all(bool(torch.isfinite(v).all()) for v in floats)


# ---- 2. A diverging run ------------------------------------------------------------------

def test_diverging_run_says_why_in_the_panel_and_opens_no_dialog(window, dock, qtbot,
                                                                 monkeypatch):
    # SGD at the panel's highest learning rate (10): the loss goes 0.7, ~200, ~2e4, ...
    # over the first steps, so the run must end within its first epoch (4 steps).
    open_xo(window, **SMALL, epochs=5, batch_size=64, optimizer="sgd", lr=10.0)
    assert dock.panel.lr.value() == 10.0
    calls: list[str] = []
    for name in ("warning", "critical", "information", "question", "about"):
        monkeypatch.setattr(QMessageBox, name, staticmethod(
            lambda *a, _n=name, **k: calls.append(_n) or QMessageBox.StandardButton.Ok))
    dialogs: list[str] = []

    def watch() -> None:
        for w in QApplication.topLevelWidgets():
            if isinstance(w, QDialog) and w.isVisible():
                dialogs.append(f"{type(w).__name__}: {w.windowTitle()}")
                w.reject()                         # never leave a test blocked on it

    watcher = QTimer()
    watcher.setInterval(20)
    watcher.timeout.connect(watch)
    watcher.start()
    try:
        finished = start_from_gui(qtbot, dock)
        qtbot.waitUntil(lambda: bool(finished), timeout=WAIT)
        qtbot.wait(300)                            # anything opened right after the end
        watch()
    finally:
        watcher.stop()
    failed = finished[0]
    assert isinstance(failed, FailedEvent), failed
    assert failed.kind == "nan" and "at epoch 1," in failed.reason
    status = dock.panel.status
    assert status.text() == failed.reason
    assert "diverged" in status.text() and "lower the learning rate" in status.text().lower()
    assert status.property("error") is True
    assert "#d32f2f" in status.styleSheet()          # red
    assert calls == [] and dialogs == []
    assert window.canvas.read_only is False and dock.panel.start_button.isEnabled()


def test_divergence_is_caught_however_many_steps_the_first_report_covers(tmp_path):
    """Regression: the baseline was the first report window's mean loss, not step 1's."""
    # The GUI run above on a fast machine: SGD at lr 10 with 4 steps per epoch, all
    # inside the first report window (made certain here with a long report interval).
    # With the window's mean as the baseline it ended "done", validation loss ~1e15.
    graph = xo_graph(**SMALL, epochs=1, batch_size=64, optimizer="sgd", lr=10.0)
    events: list = []
    result = Trainer(graph, TrainConfig.from_dict(graph.training), callback=events.append,
                     out_dir=tmp_path, report_interval=3600).run()
    losses = [e.val_loss for e in events if type(e).__name__ == "EpochEvent"]
    assert isinstance(result, FailedEvent) and result.kind == "nan", (
        f"ended as {type(result).__name__} with validation losses {losses}")


# ---- 3. Settings are the file's training key ----------------------------------------------

def test_settings_are_undoable_edits_of_the_training_key_and_are_saved(window, dock, qtbot,
                                                                       tmp_path):
    open_xo(window, my_note=1, device="cpu")
    doc, panel = window.doc, dock.panel
    assert not doc.is_dirty
    before = dict(doc.graph.training)
    assert (before["epochs"], before["optimizer"]) == (5, "adam")
    assert (panel.epochs.value(), panel.optimizer.currentData()) == (5, "adam")
    panel.epochs.setValue(9)                                   # as the spin box does
    panel.optimizer.setCurrentIndex(panel.optimizer.findData("sgd"))   # as a pick does
    QApplication.processEvents()
    assert doc.graph.training["epochs"] == 9 and doc.graph.training["optimizer"] == "sgd"
    assert doc.graph.training["my_note"] == 1
    assert doc.is_dirty and doc.title().endswith("*")
    # edits one after another merge into one step (until a seal): one Ctrl+Z undoes both
    key(window, Qt.Key.Key_Z, CTRL)
    assert doc.graph.training == before
    assert (panel.epochs.value(), panel.optimizer.currentData()) == (5, "adam")
    assert not doc.is_dirty
    key(window, Qt.Key.Key_Z, CTRL | SHIFT)
    assert doc.graph.training["epochs"] == 9 and doc.graph.training["optimizer"] == "sgd"
    assert (panel.epochs.value(), panel.optimizer.currentData()) == (9, "sgd")
    assert doc.is_dirty
    path = tmp_path / "xo.convas.json"
    doc.save(path)
    assert not doc.is_dirty
    training = json.loads(path.read_text("utf-8"))["training"]
    assert training["epochs"] == 9 and training["optimizer"] == "sgd"
    assert training["my_note"] == 1                           # a key Convas does not know
    assert training["classes"] == ["X", "O"]                  # nor any other one lost
    # and they come back with the file
    doc.new_from(xo_graph())
    assert panel.epochs.value() == 5
    doc.open(path)
    assert (panel.epochs.value(), panel.optimizer.currentData()) == (9, "sgd")
    assert doc.graph.training["my_note"] == 1


def test_undo_of_a_key_the_file_lacked_shows_the_default_again(window, dock, qtbot):
    """Regression: the panel kept the undone value of a key the file does not have."""
    open_xo(window, device="cpu")
    doc, panel = window.doc, dock.panel
    assert "schedule" not in doc.graph.training               # trains with "constant"
    assert panel.schedule.currentData() == TrainConfig().schedule
    before = dict(doc.graph.training)
    panel.schedule.setCurrentIndex(panel.schedule.findData("cosine"))
    assert doc.graph.training == {**before, "schedule": "cosine"}   # that key, no other
    key(window, Qt.Key.Key_Z, CTRL)
    assert "schedule" not in doc.graph.training
    assert panel.schedule.currentData() == TrainConfig().schedule     # what the file means
    assert TrainConfig.from_dict({**doc.graph.training, **panel.settings()}).schedule == \
        TrainConfig.from_dict(doc.graph.training).schedule


def test_a_new_design_does_not_inherit_the_previous_designs_settings(window, dock, qtbot):
    """Regression: keys the new file lacks kept the previous design's values."""
    open_xo(window, device="cpu")
    panel = dock.panel
    panel.schedule.setCurrentIndex(panel.schedule.findData("cosine"))
    panel.precision.setCurrentIndex(panel.precision.findData("fp32"))
    window.doc.undo_stack.setClean()
    open_xo(window, device="cpu")                             # no schedule, no precision
    assert "schedule" not in window.doc.graph.training
    assert panel.schedule.currentData() == TrainConfig().schedule
    assert panel.precision.currentData() == TrainConfig().precision


# ---- 4. The dataset preview --------------------------------------------------------------

def test_dataset_preview_shows_samples_with_class_names(window, dock, qtbot):
    open_xo(window, device="cpu")
    wait_for_preview(qtbot, dock)
    preview = dock.panel.preview
    assert preview.message() == ""
    captions = preview.captions()
    assert 0 < len(captions) <= 16 and len(captions) == preview.count()
    assert set(captions) <= set(SHAPES_CLASSES)
    assert {"X", "O"} <= set(captions)                          # both classes shown
    info = dock.panel.dataset_info.text()
    assert "shapes" in info and "1×32×32" in info
    assert dock.preview is not None and dock.preview.source == "shapes"
    assert dock.panel.fit_button.isHidden()                     # the template fits


def test_dataset_preview_shows_the_classes_the_design_trains_on(window, dock, qtbot):
    """Regression: the preview ignored the training key's classes (showed all 5)."""
    open_xo(window, device="cpu")                               # classes: ["X", "O"]
    wait_for_preview(qtbot, dock)
    assert set(dock.panel.preview.captions()) == {"X", "O"}
    assert "2 classes" in dock.panel.dataset_info.text()


def test_fit_check_uses_the_image_size_the_run_will_use(window, dock, qtbot):
    """Regression: the preview ignored dataset_options, so the fit check used 32×32."""
    open_xo(window, device="cpu", dataset_options={"size": 28, "count": 300})
    wait_for_preview(qtbot, dock)
    assert dock.preview.image_shape == (1, 28, 28)
    assert not dock.panel.fit_button.isHidden()


def test_dataset_preview_of_a_missing_folder_says_so(window, dock, qtbot, tmp_path,
                                                     monkeypatch):
    open_xo(window, device="cpu")
    wait_for_preview(qtbot, dock)
    missing = tmp_path / "no" / "such" / "folder"
    from PySide6.QtWidgets import QFileDialog
    monkeypatch.setattr(QFileDialog, "getExistingDirectory",
                        staticmethod(lambda *a, **k: str(missing)))
    QTest.mouseClick(dock.panel.browse_button, LEFT)            # "Folder or .npz…"
    assert dock.panel.dataset.currentData() == str(missing)
    assert window.doc.graph.training["dataset"] == str(missing)   # an edit of the design
    preview = dock.panel.preview
    qtbot.waitUntil(lambda: preview.message() != "", timeout=WAIT)
    assert preview.count() == 0
    assert str(missing) in preview.message() or "no file or folder" in preview.message()
    assert dock.preview is None
    assert dock.panel.download_button.isHidden()                # a path: nothing to fetch
    assert not dock.panel.fit_button.isVisible()
    dock.scout.wait(30)          # every answer for the folder delivered (see the test below)
    qtbot.wait(100)
    # back to the built-in set: the preview recovers
    key(window, Qt.Key.Key_Z, CTRL)
    assert dock.panel.dataset.currentData() == "shapes"
    qtbot.waitUntil(lambda: preview.count() > 0, timeout=WAIT)
    assert preview.message() == ""


def test_a_stale_preview_failure_does_not_replace_the_current_preview(window, dock, qtbot,
                                                                      tmp_path, monkeypatch):
    """Regression: an older answer already queued arrived after a newer cached one, and
    a failure was shown whatever dataset it was for."""
    open_xo(window, device="cpu")
    wait_for_preview(qtbot, dock)
    dock.scout.wait(30)
    qtbot.wait(100)
    from PySide6.QtWidgets import QFileDialog
    monkeypatch.setattr(QFileDialog, "getExistingDirectory",
                        staticmethod(lambda *a, **k: str(tmp_path / "missing")))
    QTest.mouseClick(dock.panel.browse_button, LEFT)   # a folder that fails at once...
    dock.scout.wait(30)                                # ...its answer queued, not yet shown
    window.undo_action.trigger()                       # ...and straight back to shapes
    preview = dock.panel.preview
    assert dock.panel.dataset.currentData() == "shapes"
    assert preview.count() > 0 and preview.message() == ""   # shapes' cached preview
    qtbot.wait(300)                                    # the old answer is delivered now
    assert dock.panel.dataset.currentData() == "shapes"
    assert preview.message() == "" and preview.count() > 0


# ---- 5. The Input fit offer ----------------------------------------------------------------

def test_fit_offer_sets_the_input_to_the_datasets_shape_in_one_undo_step(window, dock, qtbot):
    open_xo(window, device="cpu")
    wait_for_preview(qtbot, dock)
    panel, doc = dock.panel, window.doc
    assert panel.fit_button.isHidden() and panel.offer_box.isHidden()
    doc.set_param("input", "height", 28)
    doc.set_param("input", "width", 24)
    qtbot.waitUntil(lambda: panel.fit_button.isVisible(), timeout=WAIT)
    text = panel.fit_label.text()
    assert "input" in text and "1×28×24" in text and "1×32×32" in text
    assert "1×32×32" in panel.fit_button.text()
    steps = doc.undo_stack.count()
    QTest.mouseClick(panel.fit_button, LEFT)
    params = doc.graph.params_of("input")
    assert (params["channels"], params["height"], params["width"]) == (1, 32, 32)
    assert doc.undo_stack.count() == steps + 1                 # one step
    assert panel.fit_button.isHidden() and panel.fit_label.text() == ""
    assert panel.offer_box.isHidden()
    doc.undo_stack.undo()
    params = doc.graph.params_of("input")
    assert (params["height"], params["width"]) == (28, 24)     # both, in one undo
    assert panel.fit_button.isVisible() and "1×28×24" in panel.fit_label.text()
    doc.undo_stack.redo()
    assert doc.report.nodes["input"].output_shape == (1, 32, 32)
    assert panel.fit_button.isHidden()


def test_start_stays_put_when_the_fit_offer_comes_and_goes(window, dock, qtbot):
    """Controls never jump under the cursor: the offer appears below the buttons, and
    neither moves Start nor grows the dock."""
    from PySide6.QtCore import QPoint, QRect

    open_xo(window, device="cpu")
    wait_for_preview(qtbot, dock)
    panel = dock.panel

    def start_geometry() -> QRect:
        QApplication.processEvents()
        return QRect(panel.start_button.mapTo(window, QPoint(0, 0)), panel.start_button.size())

    before, dock_height = start_geometry(), dock.height()
    assert panel.offer_box.isHidden()
    window.doc.set_param("fc", "out_features", 7)             # the offer appears
    qtbot.waitUntil(lambda: panel.fit_button.isVisible(), timeout=WAIT)
    assert "out_features" in panel.fit_button.text()
    assert start_geometry() == before and dock.height() == dock_height
    window.doc.undo_stack.undo()                              # and goes
    qtbot.waitUntil(lambda: panel.offer_box.isHidden(), timeout=WAIT)
    assert start_geometry() == before and dock.height() == dock_height


# ---- 6. The Mistakes gallery ---------------------------------------------------------------

def test_mistakes_gallery_after_one_epoch_matches_the_confusion_matrix(window, dock, qtbot):
    # lr 1e-6: after one epoch the network is still near chance, so mistakes are certain
    open_xo(window, **SMALL, epochs=1, batch_size=64, lr=1e-6)
    finished = start_from_gui(qtbot, dock)
    qtbot.waitUntil(lambda: bool(finished), timeout=WAIT)
    assert isinstance(finished[0], DoneEvent), getattr(finished[0], "reason", "")
    assert not finished[0].stopped
    wrong = off_diagonal_sum(dock.confusion)
    k = dock.confusion.table().rowCount()
    total = sum(int(dock.confusion.cell_text(r, c)) for r in range(k) for c in range(k))
    assert total == dock.info.val_size == 60
    gallery = dock.mistakes
    if wrong:
        assert gallery.message() == ""
        assert gallery.count() == min(32, wrong)
        captions = gallery.captions()
        assert all("true:" in c and "pred:" in c for c in captions)
        for caption in captions:                               # a mistake: pred ≠ true
            pred_line, true_line = caption.split("\n")
            pred = pred_line.removeprefix("pred: ").split(" (")[0]
            true = true_line.removeprefix("true: ")
            assert pred != true and {pred, true} <= {"X", "O"}
        title = gallery.title()
        assert "Epoch 1" in title and f"{wrong} of {total}" in title
    else:
        assert gallery.count() == 0
        assert "Epoch 1" in gallery.message() and "correctly" in gallery.message()
    # nothing was selected: the feature maps show the first convolution all the same
    assert window.canvas.selected_nodes() == []
    assert dock.maps.title.text().startswith("conv1") and dock.maps.tile_grid() != (0, 0)


# ---- 7. The device list ------------------------------------------------------------------

def test_device_combo_lists_what_this_computer_has(window, dock, qtbot):
    open_xo(window)
    combo = dock.panel.device

    def entries() -> list[tuple[str, str]]:
        return [(combo.itemData(i), combo.itemText(i)) for i in range(combo.count())]

    qtbot.waitUntil(lambda: any("CPU" in label for _, label in entries()), timeout=WAIT)
    values = [v for v, _ in entries()]
    assert "auto" in values and "cpu" in values
    assert "CPU" in dict(entries())["cpu"]
    if not torch.cuda.is_available():
        assert "cuda" not in values
        assert "CPU" in dict(entries())["auto"]                # what 'auto' means here
    assert combo.currentData() in values
    assert not window.doc.is_dirty                             # listing is not an edit



# ---- the Download button ---------------------------------------------------------------

def test_a_missing_named_dataset_offers_a_download_that_then_previews(window, dock, qtbot,
                                                                      tmp_path, monkeypatch):
    import sys
    from pathlib import Path

    import engine.data

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "engine"))
    from data_fixtures import make_mnist  # an MNIST-format folder, 30 images 8×8

    monkeypatch.setenv("CONVAS_DATA", str(tmp_path / "data"))
    calls = []

    def fake_download(name, root=None, *, base_url=None, progress=None):
        calls.append(name)           # what the real one would fetch, from a local fixture
        progress(5 << 20, 11 << 20)
        make_mnist(tmp_path / "data" / name)
        return tmp_path / "data" / name

    monkeypatch.setattr(engine.data, "download", fake_download)
    open_xo(window, device="cpu")
    wait_for_preview(qtbot, dock)
    panel = dock.panel
    panel.dataset.setCurrentIndex(panel.dataset.findData("mnist"))   # a user's choice
    assert window.doc.graph.training["dataset"] == "mnist"
    assert "classes" not in window.doc.graph.training   # X/O were shapes' classes
    qtbot.waitUntil(lambda: panel.preview.message() != "", timeout=WAIT)
    assert "not on this computer" in panel.preview.message()
    assert panel.download_button.isVisible() and panel.download_button.isEnabled()
    QTest.mouseClick(panel.download_button, LEFT)
    qtbot.waitUntil(lambda: panel.preview.count() > 0, timeout=WAIT)
    assert calls == ["mnist"]
    assert panel.download_button.isHidden() and "mnist" in panel.dataset_info.text()
    # the fixture's images are 1×8×8 and it has 3 classes: the Input is offered first
    assert not panel.fit_button.isHidden() and "1×8×8" in panel.fit_button.text()
    QTest.mouseClick(panel.fit_button, LEFT)
    assert window.doc.graph.params_of("input")["height"] == 8
    qtbot.waitUntil(lambda: "out_features" in panel.fit_button.text(), timeout=WAIT)
    QTest.mouseClick(panel.fit_button, LEFT)         # then the classes: fc gives 3
    assert tuple(window.doc.report.output_shape) == (3,) and panel.fit_button.isHidden()


def test_start_with_an_impossible_design_says_why_at_once(window, dock, qtbot):
    open_xo(window, device="cpu")
    window.doc.remove(["flatten"])                 # Linear now gets an image tensor
    assert window.doc.report.errors
    assert dock.start() is False
    assert dock.controller is None or not dock.controller.is_running
    text = dock.panel.status.text()
    assert "cannot train" in text and "Problems" in text and dock.panel.status.property("error")
    assert window.canvas.read_only is False


def test_f5_starts_and_shift_f5_stops_a_run(window, dock, qtbot):
    open_xo(window, **SMALL, epochs=200, batch_size=8)
    QTest.keyClick(window, Qt.Key.Key_F5)
    assert dock.is_running and not window.train_action.isEnabled()
    finished: list = []
    dock.controller.finished.connect(finished.append)
    steps: list = []
    dock.controller.step.connect(steps.append)
    qtbot.waitUntil(lambda: bool(steps), timeout=WAIT)
    QTest.keyClick(window, Qt.Key.Key_F5, SHIFT)
    qtbot.waitUntil(lambda: bool(finished), timeout=WAIT)
    assert isinstance(finished[0], DoneEvent) and finished[0].stopped
