"""The breadcrumb bar across the top of the canvas while a block's body is shown:
"design ▸ Stage ▸ ConvReLU", each crumb but the last a button that goes back there.

It floats over the canvas' top edge (as the read-only banner does) rather than taking
a row of the window, so the canvas keeps its size when a body opens and closes.
"""

from __future__ import annotations

from collections.abc import Sequence

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QPalette
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QToolButton, QWidget

SEPARATOR = "▸"


class Breadcrumb(QFrame):
    """Crumbs as buttons; ``crumb_clicked(depth)``: 0 is the design, 1 the first body…"""

    crumb_clicked = Signal(int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("canvasBreadcrumb")
        self.setAutoFillBackground(True)
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self._layout = QHBoxLayout(self)
        self._layout.setContentsMargins(6, 2, 8, 2)
        self._layout.setSpacing(2)
        self.buttons: list[QToolButton] = []
        self.note = QLabel(self)
        self.note.setForegroundRole(QPalette.ColorRole.PlaceholderText)
        self.hide()

    def set_path(self, labels: Sequence[str], tips: Sequence[str] = (),
                 note: str = "") -> None:
        """Show ``labels`` (the design first); fewer than two labels hide the bar."""
        while self._layout.count():
            item = self._layout.takeAt(0)
            widget = item.widget()
            if widget is not None and widget is not self.note:
                widget.deleteLater()
        self.buttons = []
        if len(labels) < 2:
            self.hide()
            return
        for depth, label in enumerate(labels):
            if depth:
                sep = QLabel(SEPARATOR, self)
                sep.setForegroundRole(QPalette.ColorRole.PlaceholderText)
                self._layout.addWidget(sep)
            button = QToolButton(self)
            button.setText(label)
            button.setAutoRaise(True)
            button.setFocusPolicy(Qt.FocusPolicy.NoFocus)
            if depth < len(tips):
                button.setToolTip(tips[depth])
            last = depth == len(labels) - 1
            if last:  # where we are: bold, not a way back
                font = button.font()
                font.setBold(True)
                button.setFont(font)
                button.setEnabled(False)
            else:
                button.setCursor(Qt.CursorShape.PointingHandCursor)
                button.clicked.connect(lambda _=False, d=depth: self.crumb_clicked.emit(d))
            self._layout.addWidget(button)
            self.buttons.append(button)
        self.note.setText(f"  —  {note}" if note else "")
        self._layout.addWidget(self.note)
        self.adjustSize()
        self.show()
        self.raise_()

    def labels(self) -> list[str]:
        return [b.text() for b in self.buttons]
