"""Shared by the widget tests: a widget shown at a given size, closed after the test."""

from __future__ import annotations

import pytest


@pytest.fixture
def shown(qtbot):
    """``shown(widget, width, height)``: the widget on screen (offscreen), exposed."""

    def show(widget, width: int, height: int):
        qtbot.addWidget(widget)
        widget.resize(width, height)
        widget.show()
        qtbot.waitExposed(widget)
        return widget

    return show
