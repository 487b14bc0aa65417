"""The main window as the GUI tests use it: private settings and recovery folder, and
no prompt when a test ends with unsaved edits or (having failed) with a run active."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QSettings

from designer.mainwindow import MainWindow


@pytest.fixture
def window(qtbot, tmp_path):
    settings = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    w = MainWindow(settings=settings, recovery_dir=str(tmp_path / "recovery"))
    w.resize(1400, 900)
    w.show()
    qtbot.waitExposed(w)
    w.activateWindow()
    yield w
    w.training.shutdown()   # else closing would ask whether to stop a run, and wait
    w.doc.undo_stack.setClean()
    w.close()
