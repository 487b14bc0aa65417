"""How the main window shares its room between the canvas and the docks.

The canvas is where a design is made, so it gets most of the window: the palette and
the inspector start narrow, and the Layers / Problems / Training tabs start as a short
strip under the canvas (about five table rows). The Training tab holds a panel, curves
and feature maps that need far more height than that; it sits in a scroll area, so
its size never forces the strip open, and it grows when a run starts, the way an IDE
opens its debug panel: to the height the user last watched a run at (a default share
of the window the first time). When the run ends the dock keeps whatever size it has:
the results are worth reading, and the user shrinks it when done. A size that only
the run gave it is not remembered as the user's layout (see ``before_save``).

Window layouts are saved with ``LAYOUT_VERSION``: a saved state from an older version
(the docks once opened at half the window) is ignored and the defaults apply.
"""

from __future__ import annotations

from PySide6.QtCore import QByteArray, QObject, QSettings, Qt
from PySide6.QtWidgets import QDockWidget, QFrame, QMainWindow, QScrollArea, QWidget

LAYOUT_VERSION = 2          # bump whenever the default dock sizes change
SIDE_WIDTHS = {"Blocks": 200, "Inspector": 290}
BOTTOM_HEIGHT = 170         # the Layers / Problems / Training strip, at first
RUN_SHARE = 0.45            # of the window's height, for the first run's Training dock
RUN_MOST = 0.6              # never more than this share, whatever the panel asks
RUN_HEIGHT_KEY = "training_dock_height"


def scrolling(widget: QWidget) -> QScrollArea:
    """``widget`` in a frameless scroll area: a dock holding it can be made smaller than
    the widget's minimum size (it scrolls then) instead of pushing the canvas aside."""
    area = QScrollArea()
    area.setObjectName(f"{widget.objectName() or type(widget).__name__}_scroll")
    area.setWidget(widget)
    area.setWidgetResizable(True)
    area.setFrameShape(QFrame.Shape.NoFrame)
    return area


def default_sizes(window: QMainWindow, docks: dict[str, QDockWidget]) -> None:
    """The first-start layout: narrow side docks, a short strip at the bottom."""
    window.resizeDocks([docks[t] for t in SIDE_WIDTHS], list(SIDE_WIDTHS.values()),
                       Qt.Orientation.Horizontal)
    window.resizeDocks([docks["Layers"]], [BOTTOM_HEIGHT], Qt.Orientation.Vertical)


def restore(window: QMainWindow, settings: QSettings) -> bool:
    """Restore the saved geometry and dock layout; False when the saved layout is from
    another LAYOUT_VERSION (or missing) and the defaults stay."""
    geometry = settings.value("geometry")
    if isinstance(geometry, QByteArray):
        window.restoreGeometry(geometry)
    state = settings.value("window_state")
    if not isinstance(state, QByteArray):
        return False
    return bool(window.restoreState(state, LAYOUT_VERSION))


def save(window: QMainWindow, settings: QSettings) -> None:
    settings.setValue("geometry", window.saveGeometry())
    settings.setValue("window_state", window.saveState(LAYOUT_VERSION))


class TrainingRoom(QObject):
    """Grows the Training dock when a run starts and remembers the height the user
    watched it at; gives the room back only when the window's layout is saved.

    Heights are the bottom dock area's, from the canvas down to the status bar,
    whichever of its tabs is in front (a tab behind another has no size of its own)."""

    def __init__(self, window: QMainWindow, dock: QDockWidget, settings: QSettings) -> None:
        super().__init__(window)
        self.window, self.dock, self.settings = window, dock, settings
        self._grown: tuple[int, int] | None = None   # (height before, height given)

    def bottom_height(self) -> int:
        w = self.window
        return w.statusBar().geometry().top() - w.centralWidget().geometry().bottom() - 1

    def set_bottom_height(self, height: int) -> None:
        """resizeDocks sizes the dock, not the area (tab bar, splitter): ask, measure,
        and ask again by the difference."""
        request = height
        for _ in range(2):
            self.window.resizeDocks([self.dock], [request], Qt.Orientation.Vertical)
            self.window.layout().activate()
            missing = height - self.bottom_height()
            if not missing:
                break
            request += missing

    def wanted(self) -> int:
        """The height a run gets: the user's last one, else RUN_SHARE of the window, but
        at least what the panel needs without scrolling (within RUN_MOST)."""
        window_h = self.window.height()
        saved = self.settings.value(RUN_HEIGHT_KEY)
        try:
            height = int(saved) if saved is not None else 0
        except (TypeError, ValueError):
            height = 0
        if height <= 0:
            content = self.dock.widget()
            need = content.widget().minimumSizeHint().height() if isinstance(
                content, QScrollArea) and content.widget() else 0
            height = max(int(RUN_SHARE * window_h), need + 60)
        return max(BOTTOM_HEIGHT, min(height, int(RUN_MOST * window_h)))

    def _at_bottom(self) -> bool:
        return (not self.dock.isFloating() and self.window.dockWidgetArea(self.dock)
                == Qt.DockWidgetArea.BottomDockWidgetArea)

    def running_changed(self, running: bool) -> None:
        if running:
            self.dock.show()
            self.dock.raise_()
            self._grown = None
            if not self._at_bottom():
                return
            self.window.layout().activate()
            before, wanted = self.bottom_height(), self.wanted()
            if before < wanted:
                self.set_bottom_height(wanted)
                self._grown = (before, self.bottom_height())
        elif self._at_bottom():
            # the height the user watched this run at is the next run's
            height = self.bottom_height()
            if self._grown is None or height != self._grown[1]:
                self.settings.setValue(RUN_HEIGHT_KEY, height)

    def before_save(self) -> None:
        """About to save the window's layout: a dock still as tall as only the run made
        it goes back to the user's own height, so the next start is not all dock."""
        if (self._grown is not None and self._at_bottom()
                and self.bottom_height() == self._grown[1]):
            self.set_bottom_height(self._grown[0])
        self._grown = None
