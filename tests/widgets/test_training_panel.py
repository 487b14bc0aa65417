"""The training panel: settings dicts in and out, run requests, progress and status."""

from __future__ import annotations

import PySide6  # noqa: F401  (before anything that may import pyqtgraph)
import pytest
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest

from widgets.training_panel import KEYS, TrainingPanel

SETTINGS = {
    "dataset": "cifar10", "epochs": 12, "batch_size": 256, "lr": 0.0025,
    "optimizer": "sgd", "schedule": "onecycle", "device": "cpu", "precision": "bf16",
    "crop_padding": 4, "hflip": True,
}


@pytest.fixture
def panel(qtbot):
    widget = TrainingPanel()
    qtbot.addWidget(widget)
    widget.show()
    return widget


def test_defaults_match_train_config(panel):
    assert panel.settings() == {
        "dataset": "shapes", "epochs": 5, "batch_size": 64, "lr": 0.001, "optimizer": "adam",
        "schedule": "constant", "device": "auto", "precision": "auto", "crop_padding": 0,
        "hflip": False,
    }
    assert tuple(panel.settings()) == KEYS


def test_settings_round_trip(panel):
    panel.set_settings(SETTINGS)
    assert panel.settings() == SETTINGS


def test_unknown_keys_ignored_and_missing_keys_kept(panel):
    panel.set_settings(SETTINGS)
    panel.set_settings({"epochs": 3, "momentum": 0.5, "seed": 1})
    assert panel.settings() == {**SETTINGS, "epochs": 3}


def test_custom_dataset_path_is_added(panel):
    panel.set_settings({"dataset": "/data/pets.npz"})
    assert panel.settings()["dataset"] == "/data/pets.npz"
    assert panel.dataset.findData("/data/pets.npz") >= 0


def test_set_settings_emits_nothing(panel, qtbot):
    with qtbot.assertNotEmitted(panel.settings_changed):
        panel.set_settings(SETTINGS)


def test_user_edit_emits_settings_changed(panel, qtbot):
    with qtbot.waitSignal(panel.settings_changed, timeout=1000) as blocker:
        panel.epochs.setValue(42)
    assert blocker.args[0]["epochs"] == 42
    with qtbot.waitSignal(panel.settings_changed, timeout=1000) as blocker:
        QTest.mouseClick(panel.crop_padding, Qt.MouseButton.LeftButton)
    assert blocker.args[0]["crop_padding"] == 4
    with qtbot.waitSignal(panel.settings_changed, timeout=1000) as blocker:
        panel.optimizer.setCurrentIndex(panel.optimizer.findData("adamw"))
    assert blocker.args[0]["optimizer"] == "adamw"


def test_set_devices_keeps_value_and_shows_label(panel, qtbot):
    panel.set_settings({"device": "cuda"})
    with qtbot.assertNotEmitted(panel.settings_changed):
        panel.set_devices([("auto", "auto"), ("cpu", "cpu"),
                           ("cuda", "cuda — NVIDIA H100 (79 GiB)")])
    assert panel.settings()["device"] == "cuda"
    assert panel.device.currentText() == "cuda — NVIDIA H100 (79 GiB)"


def test_start_click_emits_start_requested(panel, qtbot):
    with qtbot.waitSignal(panel.start_requested, timeout=1000):
        QTest.mouseClick(panel.start_button, Qt.MouseButton.LeftButton)


def test_set_running_locks_settings(panel):
    assert not panel.pause_button.isEnabled() and not panel.stop_button.isEnabled()
    panel.set_running(True)
    assert not panel.epochs.isEnabled()
    assert not panel.dataset.isEnabled()
    assert not panel.start_button.isEnabled()
    assert panel.stop_button.isEnabled() and panel.pause_button.isEnabled()
    panel.set_running(False)
    assert panel.epochs.isEnabled() and panel.start_button.isEnabled()
    assert not panel.stop_button.isEnabled()


def test_stop_click_emits_stop_requested(panel, qtbot):
    panel.set_running(True)
    with qtbot.waitSignal(panel.stop_requested, timeout=1000):
        QTest.mouseClick(panel.stop_button, Qt.MouseButton.LeftButton)


def test_pause_resume_protocol(panel, qtbot):
    panel.set_running(True)
    assert panel.pause_button.text() == "Pause"
    with qtbot.waitSignal(panel.pause_requested, timeout=1000), \
            qtbot.assertNotEmitted(panel.resume_requested):
        QTest.mouseClick(panel.pause_button, Qt.MouseButton.LeftButton)
    panel.set_running(True, paused=True)  # the owner confirms the trainer has paused
    assert panel.pause_button.text() == "Resume"
    assert panel.is_paused()
    with qtbot.waitSignal(panel.resume_requested, timeout=1000), \
            qtbot.assertNotEmitted(panel.pause_requested):
        QTest.mouseClick(panel.pause_button, Qt.MouseButton.LeftButton)
    panel.set_running(True)
    assert panel.pause_button.text() == "Pause"
    panel.set_running(False, paused=True)  # a stopped run is never paused
    assert panel.pause_button.text() == "Pause" and not panel.is_paused()


def test_set_progress_sets_overall_fraction(panel):
    panel.set_progress(1, 4, 50, 100, "epoch 2/4")
    assert panel.progress_fraction() == pytest.approx(0.375)
    assert panel.progress.format() == "epoch 2/4"
    panel.set_progress(4, 4, 0, 100, "done")
    assert panel.progress_fraction() == pytest.approx(1.0)
    panel.set_progress(0, 0, 5, 0, "")  # degenerate sizes do not divide by zero
    assert 0.0 <= panel.progress_fraction() <= 1.0


def test_set_status_marks_errors(panel):
    panel.set_status("epoch 1: loss 0.52")
    assert panel.status.text() == "epoch 1: loss 0.52"
    assert panel.status.styleSheet() == ""
    panel.set_status("CUDA out of memory", error=True)
    assert panel.status.text() == "CUDA out of memory"
    assert "color" in panel.status.styleSheet()


def test_browse_adds_chosen_folder(panel, qtbot, monkeypatch):
    from PySide6.QtWidgets import QFileDialog

    monkeypatch.setattr(QFileDialog, "getExistingDirectory", lambda *a, **k: "/data/pets")
    with qtbot.waitSignal(panel.settings_changed, timeout=1000) as blocker:
        QTest.mouseClick(panel.browse_button, Qt.MouseButton.LeftButton)
    assert blocker.args[0]["dataset"] == "/data/pets"


def test_learning_rate_is_shown_and_typed_as_people_write_it(qtbot):
    panel = TrainingPanel()
    qtbot.addWidget(panel)
    for value, text in ((3e-7, "3e-07"), (0.003, "0.003"), (1.5, "1.5")):
        panel.set_settings({"lr": value})
        assert panel.lr.text() == text and panel.settings()["lr"] == value
    panel.lr.lineEdit().selectAll()
    qtbot.keyClicks(panel.lr.lineEdit(), "2e-5")
    panel.lr.interpretText()
    assert panel.settings()["lr"] == pytest.approx(2e-5)
    panel.lr.stepBy(1)                    # up doubles, down halves: rates span decades
    assert panel.settings()["lr"] == pytest.approx(4e-5)
    panel.lr.stepBy(-2)
    assert panel.settings()["lr"] == pytest.approx(1e-5)


# ---- one owner: the panel is generated from TrainConfig's description -------------------

def _row_label(panel, widget) -> str:
    """The form label of the row that holds ``widget`` (directly or in a row layout)."""
    from PySide6.QtWidgets import QFormLayout

    form = panel.findChild(QFormLayout) or panel.layout().itemAt(0).layout()
    for row in range(form.rowCount()):
        label = form.itemAt(row, QFormLayout.ItemRole.LabelRole).widget()
        field = form.itemAt(row, QFormLayout.ItemRole.FieldRole).layout()
        if field is not None and field.indexOf(widget) >= 0:
            return label.text()
    raise AssertionError(f"{widget} is in no row of the form")


def test_panel_widgets_are_those_train_config_describes(panel):
    from PySide6.QtWidgets import QCheckBox, QComboBox, QDoubleSpinBox, QSpinBox

    from engine.train_config import TrainConfig, panel_settings

    shown = panel_settings()
    assert KEYS == tuple(s.name for s in shown) and set(panel.editors) == set(KEYS)
    assert panel.settings() == {s.name: getattr(TrainConfig(), s.name) for s in shown}
    for s in shown:
        editor = panel.editors[s.name]
        assert getattr(panel, s.name) is editor
        assert s.doc in editor.toolTip()
        assert _row_label(panel, editor) == (s.group or s.label)
        if s.kind in ("choice", "text"):
            assert isinstance(editor, QComboBox)
            assert [editor.itemData(i) for i in range(editor.count())] == list(s.choices)
        elif s.kind == "bool" or s.switch is not None:
            assert isinstance(editor, QCheckBox)
            assert editor.text() == (s.label if s.group else "")
        else:
            assert isinstance(editor, QSpinBox if s.kind == "int" else QDoubleSpinBox)
            assert editor.minimum() == pytest.approx(s.minimum)
            if s.maximum is None:           # no bound in TrainConfig: none in the panel
                assert editor.maximum() >= 2**31 - 1
            else:
                assert editor.maximum() == pytest.approx(s.maximum)
    # a switch sets TrainConfig's "on" value, and its default when off
    for s in (s for s in shown if s.switch is not None):
        panel.editors[s.name].setChecked(True)
        assert panel.settings()[s.name] == s.switch
        panel.editors[s.name].setChecked(False)
        assert panel.settings()[s.name] == s.default
    # the setting that takes paths has its browse button; the others have none
    assert set(panel.browse_buttons) == {s.name for s in shown if s.paths}


def _declared(source: str) -> set:
    """Choices, labels and numbers of TrainConfig's description written in ``source``."""
    import ast

    from engine.train_config import settings

    words, numbers = set(), set()
    for s in settings():
        words |= {*s.choices, s.label, s.group} - {""}
        numbers |= {v for v in (s.default, s.minimum, s.maximum, s.switch)
                    if isinstance(v, int | float) and not isinstance(v, bool)}
    numbers -= {0, 1}  # too common to mean anything
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Constant) and not isinstance(node.value, bool):
            if (isinstance(node.value, str) and node.value in words) or (
                    isinstance(node.value, int | float) and node.value in numbers):
                found.add(node.value)
    return found


def test_the_panel_declares_no_choice_label_default_or_range_of_its_own():
    from pathlib import Path

    import widgets.training_panel as module

    assert _declared(Path(module.__file__).read_text("utf-8")) == set()
    # the check itself can fail: the old panel's tables are caught
    assert _declared('OPTIMIZERS = ("sgd", "adam", "adamw")\nspin.setRange(1, 65536)\n'
                     'form.addRow("Learning rate", lr)') == {"sgd", "adam", "adamw", 65536,
                                                             "Learning rate"}


def test_an_edit_emits_only_the_setting_that_changed(panel, qtbot):
    with qtbot.waitSignal(panel.settings_changed, timeout=1000) as blocker:
        panel.schedule.setCurrentIndex(panel.schedule.findData("cosine"))
    assert blocker.args[0] == {"schedule": "cosine"}
    with qtbot.waitSignal(panel.settings_changed, timeout=1000) as blocker:
        QTest.mouseClick(panel.hflip, Qt.MouseButton.LeftButton)
    assert blocker.args[0] == {"hflip": True}


# ---- controls never jump under the cursor -----------------------------------------------

@pytest.fixture
def docked_panel(qtbot):
    """The panel in a bottom dock of a main window, as the application holds it."""
    from PySide6.QtWidgets import QDockWidget, QLabel, QMainWindow

    window = QMainWindow()
    window.setCentralWidget(QLabel("canvas"))
    dock = QDockWidget("Training", window)
    panel = TrainingPanel()
    dock.setWidget(panel)
    window.addDockWidget(Qt.DockWidgetArea.BottomDockWidgetArea, dock)
    qtbot.addWidget(window)
    window.resize(1200, 800)
    window.show()
    qtbot.waitExposed(window)
    return window, panel


def test_start_stays_put_when_messages_come_and_go(docked_panel, qtbot):
    from PySide6.QtCore import QPoint, QRect
    from PySide6.QtWidgets import QApplication

    window, panel = docked_panel

    def start_geometry() -> QRect:
        QApplication.processEvents()
        return QRect(panel.start_button.mapTo(window, QPoint(0, 0)), panel.start_button.size())

    before = start_geometry()
    long = "The network gives 10 outputs (from 'classifier_head'), but dataset 'cifar10' " \
           "has 2 classes (airplane, automobile). " * 2
    panel.offer_fit(long, "Set classifier_head_with_a_long_name's out_features to 2")
    assert panel.fit_button.isVisible()
    assert start_geometry() == before
    panel.clear_fit()
    assert start_geometry() == before
    panel.show_dataset_problem("mnist is not on this computer yet. Download it (needs the "
                               "network), or choose a folder that holds it.", download=True)
    panel.set_status("1,234 images/s on cpu · 3 min left\nloss 0.1234 · accuracy 97.0%")
    assert start_geometry() == before
