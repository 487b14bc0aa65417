"""Colours for the canvas, one set per theme; block-family colours come from
widgets.style, the one place the whole app takes them from.

Kept apart from the items so the light and dark palettes can be compared side by side.
"""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtGui import QColor

from widgets.style import category_color


def category_colour(category: str, palette: CanvasPalette) -> QColor:
    """Header colour of a block family: the app-wide one from widgets.style, so a palette
    entry and the block it drops look alike; unknown families get a neutral grey."""
    return category_color(category, palette.dark)


@dataclass(frozen=True)
class CanvasPalette:
    """Every colour the canvas uses for one theme."""

    dark: bool
    background: QColor
    grid_minor: QColor
    grid_major: QColor
    body: QColor
    outline: QColor
    shadow: QColor
    title: QColor          # block id on the coloured header
    title_dim: QColor      # block type beside it
    text: QColor
    text_dim: QColor
    badge: QColor
    badge_text: QColor
    port: QColor
    port_outline: QColor
    wire: QColor
    wire_hover: QColor
    selection: QColor
    error: QColor
    warning: QColor
    candidate: QColor      # input ports a dragged wire may land on
    rubber_band: QColor
    minimap_bg: QColor
    minimap_view: QColor


LIGHT = CanvasPalette(
    dark=False,
    background=QColor("#F3F4F6"), grid_minor=QColor("#D3D7DD"), grid_major=QColor("#B4BAC3"),
    body=QColor("#FFFFFF"), outline=QColor("#AEB5BF"), shadow=QColor(0, 0, 0, 28),
    title=QColor("#FFFFFF"), title_dim=QColor(255, 255, 255, 200),
    text=QColor("#20252C"), text_dim=QColor("#5F6874"),
    badge=QColor("#EDF0F4"), badge_text=QColor("#39414B"),
    port=QColor("#FFFFFF"), port_outline=QColor("#6B7480"),
    wire=QColor("#7D8692"), wire_hover=QColor("#2F80ED"),
    selection=QColor("#2F80ED"), error=QColor("#E03131"), warning=QColor("#E8A200"),
    candidate=QColor("#22A06B"), rubber_band=QColor(47, 128, 237, 40),
    minimap_bg=QColor(255, 255, 255, 225), minimap_view=QColor("#2F80ED"),
)

DARK = CanvasPalette(
    dark=True,
    background=QColor("#1D2025"), grid_minor=QColor("#30353D"), grid_major=QColor("#434A54"),
    body=QColor("#2A2E35"), outline=QColor("#4A515C"), shadow=QColor(0, 0, 0, 90),
    title=QColor("#FFFFFF"), title_dim=QColor(255, 255, 255, 190),
    text=QColor("#E6E9ED"), text_dim=QColor("#A0A8B3"),
    badge=QColor("#383E47"), badge_text=QColor("#D5DAE0"),
    port=QColor("#2A2E35"), port_outline=QColor("#B3BAC4"),
    wire=QColor("#8A939F"), wire_hover=QColor("#5AA0FF"),
    selection=QColor("#5AA0FF"), error=QColor("#FF5C5C"), warning=QColor("#F2B33D"),
    candidate=QColor("#3DD68C"), rubber_band=QColor(90, 160, 255, 45),
    minimap_bg=QColor(35, 38, 44, 230), minimap_view=QColor("#5AA0FF"),
)
