"""The dot grid behind the blocks: subtle minor dots with every fifth one stronger.

Spacing doubles as the view zooms out so the screen never fills with dots, and the
dots sit on scene multiples so a cached, scrolled background stays seamless.
"""

from __future__ import annotations

import math

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QPainter, QPen

from .theme import CanvasPalette

STEP = 20.0
MIN_SCREEN_STEP = 14.0
MAX_DOTS = 40_000


def grid_step(scale: float) -> float:
    step = STEP
    while step * scale < MIN_SCREEN_STEP:
        step *= 2
    return step


def draw_dot_grid(painter: QPainter, rect: QRectF, scale: float, palette: CanvasPalette) -> None:
    painter.fillRect(rect, palette.background)
    step = grid_step(scale)
    left = math.floor(rect.left() / step)
    top = math.floor(rect.top() / step)
    right = math.ceil(rect.right() / step)
    bottom = math.ceil(rect.bottom() / step)
    if (right - left + 1) * (bottom - top + 1) > MAX_DOTS:
        return
    minor, major = [], []
    for i in range(left, right + 1):
        x = i * step
        for j in range(top, bottom + 1):
            (major if i % 5 == 0 and j % 5 == 0 else minor).append(QPointF(x, j * step))
    painter.save()
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    for points, colour, width in ((minor, palette.grid_minor, 1.6),
                                  (major, palette.grid_major, 2.4)):
        pen = QPen(colour, width)
        pen.setCosmetic(True)
        pen.setCapStyle(Qt.PenCapStyle.RoundCap)
        painter.setPen(pen)
        painter.drawPoints(points)
    painter.restore()
