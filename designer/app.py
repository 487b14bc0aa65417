"""Start the desktop application."""

from __future__ import annotations

import os
import sys


def run_app(path: str | None = None) -> int:
    """Open the main window (with ``path`` loaded when given) and run the event loop."""
    from PySide6.QtWidgets import QApplication

    from .mainwindow import MainWindow

    os.environ.setdefault("PYQTGRAPH_QT_LIB", "PySide6")
    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("Convas")
    app.setOrganizationName("Convas")
    window = MainWindow()
    window.show()
    if path:
        window.open_file(path)
    return app.exec()
