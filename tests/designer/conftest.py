"""The main window as the GUI tests use it: private settings and recovery folder, and
no prompt when a test ends with unsaved edits or (having failed) with a run active.
Every designer test gets its own user data folder (where the editor keeps its runs)."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QSettings

from designer.mainwindow import MainWindow


@pytest.fixture(autouse=True)
def user_data(tmp_path, monkeypatch):
    """Qt's AppDataLocation (runs, recovery) inside the test's folder, never the user's."""
    folder = tmp_path / "user-data"
    monkeypatch.setenv("XDG_DATA_HOME", str(folder))
    return folder


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
    # Deleted, not only closed: a closed window's thousands of widgets stay alive and
    # every later theme switch re-polishes them all (the palette's theme test took
    # 139 s in the whole suite, 0.4 s alone).
    w.deleteLater()
