"""Start the desktop application (or render it to a PNG for the README and smoke tests)."""

from __future__ import annotations

import os
import sys
import tempfile


def run_app(path: str | None = None, screenshot: str | None = None) -> int:
    """Open the main window (with ``path`` when given) and run the event loop.

    With ``screenshot``, render the window at 1600×1000 to that PNG and exit instead.
    """
    os.environ.setdefault("PYQTGRAPH_QT_LIB", "PySide6")
    if screenshot and "QT_QPA_PLATFORM" not in os.environ and not os.environ.get("DISPLAY"):
        os.environ["QT_QPA_PLATFORM"] = "offscreen"
    from PySide6.QtWidgets import QApplication

    from engine.plugins import load_plugins

    from .mainwindow import MainWindow

    load_plugins()  # before the window: the palette lists them; broken ones are reported

    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("Convas")
    app.setOrganizationName("Convas")
    settings = None
    if screenshot:  # the default window layout, whatever the user last arranged
        from PySide6.QtCore import QSettings

        scratch = tempfile.mkdtemp(prefix="convas-shot-")
        settings = QSettings(os.path.join(scratch, "settings.ini"), QSettings.Format.IniFormat)
    window = MainWindow(settings=settings)
    theme = window.settings.value("theme", "system")
    window.set_theme(None if theme == "system" else theme == "dark")  # canvas, plots too
    if screenshot:
        return _screenshot(app, window, path, screenshot)
    window.show()
    if not window.offer_recovery() and path:
        window.open_file(path)
    return app.exec()


def _screenshot(app, window, path: str | None, out: str) -> int:
    window.resize(1600, 1000)
    window.show()
    if path and not window.open_file(path, ask=False):
        return 1
    for _ in range(3):
        app.processEvents()
    window.canvas.show_design()
    window.editor.flush()
    if window.doc.report.errors:
        window.show_first_problem()
    app.processEvents()
    ok = window.grab().save(out)
    window.doc.undo_stack.setClean()
    window.close()
    if not ok:
        sys.stderr.write(f"convas: could not write the screenshot {out}\n")
        return 1
    return 0
