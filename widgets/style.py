"""Light and dark themes, category colours and the small icons drawn from them.

One place decides colours so the palette, canvas, inspector and problems list agree,
and so switching theme is one call. Icons are painted with QPainter rather than
shipped as files: they follow the theme's colours and stay sharp at any scale.
"""

from __future__ import annotations

import math
from importlib import resources
from string import Template

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import (
    QBrush,
    QColor,
    QGuiApplication,
    QIcon,
    QPainter,
    QPainterPath,
    QPalette,
    QPen,
    QPixmap,
)
from PySide6.QtWidgets import QApplication

# (light theme, dark theme) per engine.blocks.CATEGORIES entry: ten hues far enough
# apart to tell blocks apart at a glance, none of them the plain red of errors. The
# light values are the canvas's block headers (widgets/canvas/theme.py), so a palette
# entry and the block it drops look alike; the dark-theme variants are a step lighter
# so they keep their contrast against a dark background.
CATEGORY_COLORS: dict[str, tuple[str, str]] = {
    "Input/Output": ("#546E7A", "#78909C"),
    "Convolution": ("#1E88E5", "#42A5F5"),
    "Pooling": ("#00A5B8", "#1EBFD2"),
    "Activation": ("#F08A00", "#FFA22E"),
    "Normalisation": ("#8E24AA", "#AB47BC"),
    "Regularisation": ("#D81B60", "#EC407A"),
    "Reshape": ("#9E9D24", "#B4B32E"),
    "Linear": ("#2E7D32", "#43A047"),
    "Merge": ("#8D6E63", "#A1887F"),
    "Composite": ("#3949AB", "#5C6BC0"),
}
_FALLBACK = ("#777777", "#aaaaaa")

# Colours for problems and status, per theme.
_SEVERITY = {"error": ("#c62828", "#ff6b6b"), "warning": ("#b26a00", "#ffb74d")}

_DARK_PROPERTY = "convas_dark"  # set on the QApplication by apply_theme


def category_color(category: str, dark: bool) -> QColor:
    """The colour of a block family; unknown categories get a neutral grey."""
    light, darkc = CATEGORY_COLORS.get(category, _FALLBACK)
    return QColor(darkc if dark else light)


def severity_color(severity: str, dark: bool) -> QColor:
    """Red for "error", amber for "warning" (anything else counts as a warning)."""
    light, darkc = _SEVERITY.get(severity, _SEVERITY["warning"])
    return QColor(darkc if dark else light)


def palette_is_dark(palette: QPalette) -> bool:
    """Whether a palette draws light text on a dark window (works for any theme)."""
    return palette.color(QPalette.ColorRole.Window).lightness() < 128


def is_dark(app: QGuiApplication | None = None) -> bool:
    """Whether the application currently shows the dark theme.

    After :func:`apply_theme` this is the theme it chose; before, it reads the
    application palette, so it also answers for a theme set by someone else.
    """
    app = app or QGuiApplication.instance()
    if app is None:
        return False
    chosen = app.property(_DARK_PROPERTY)
    if isinstance(chosen, bool):
        return chosen
    return palette_is_dark(app.palette())


def system_prefers_dark(app: QGuiApplication) -> bool:
    """The desktop's colour scheme (Qt ≥ 6.5); False where the platform does not say."""
    hints = app.styleHints()
    scheme = getattr(hints, "colorScheme", None)
    if scheme is None:
        return False
    return scheme() == Qt.ColorScheme.Dark


# ---- palettes ---------------------------------------------------------------------------

_LIGHT = {
    "window": "#efeff1", "text": "#1d1f23", "base": "#ffffff", "alternate": "#f5f5f7",
    "button": "#e6e6e9", "highlight": "#2f7ec1", "highlighted_text": "#ffffff",
    "link": "#1c63b7", "tooltip_base": "#ffffe8", "tooltip_text": "#1d1f23",
    "placeholder": "#80848c", "disabled": "#9a9da3", "border": "#c3c5ca",
    "muted": "#6b7079", "hover": "#dcdde1",
}
_DARK = {
    "window": "#2b2d31", "text": "#e3e5e8", "base": "#1e1f22", "alternate": "#26282c",
    "button": "#37393e", "highlight": "#3d7fd0", "highlighted_text": "#ffffff",
    "link": "#6cb2ff", "tooltip_base": "#3a3c41", "tooltip_text": "#e3e5e8",
    "placeholder": "#8c9098", "disabled": "#6f737a", "border": "#4a4d53",
    "muted": "#9a9ea6", "hover": "#45484e",
}


def theme_colors(dark: bool) -> dict[str, str]:
    """Named colours of a theme (window, text, muted, border, …) as hex strings."""
    return dict(_DARK if dark else _LIGHT)


def make_palette(dark: bool) -> QPalette:
    """A complete Fusion palette, so no colour leaks in from the desktop theme."""
    c = theme_colors(dark)
    role, group = QPalette.ColorRole, QPalette.ColorGroup
    pal = QPalette()
    window, button = QColor(c["window"]), QColor(c["button"])
    pairs = {
        role.Window: window, role.WindowText: QColor(c["text"]),
        role.Base: QColor(c["base"]), role.AlternateBase: QColor(c["alternate"]),
        role.Text: QColor(c["text"]), role.Button: button, role.ButtonText: QColor(c["text"]),
        role.BrightText: QColor("#ffffff" if dark else "#000000"),
        role.Highlight: QColor(c["highlight"]), role.HighlightedText: QColor(c["highlighted_text"]),
        role.Link: QColor(c["link"]), role.LinkVisited: QColor(c["link"]).darker(120),
        role.ToolTipBase: QColor(c["tooltip_base"]), role.ToolTipText: QColor(c["tooltip_text"]),
        role.PlaceholderText: QColor(c["placeholder"]),
        role.Light: button.lighter(150), role.Midlight: button.lighter(115),
        role.Mid: button.darker(130), role.Dark: button.darker(170),
        role.Shadow: QColor("#000000"),
    }
    if hasattr(role, "Accent"):
        pairs[role.Accent] = QColor(c["highlight"])
    for r, color in pairs.items():
        pal.setColor(r, color)
    disabled = QColor(c["disabled"])
    for r in (role.WindowText, role.Text, role.ButtonText, role.HighlightedText):
        pal.setColor(group.Disabled, r, disabled)
    pal.setColor(group.Disabled, role.Highlight, window.darker(115) if not dark
                 else window.lighter(130))
    return pal


def style_sheet(dark: bool) -> str:
    """The application style sheet with the theme's colours filled in."""
    text = resources.files("resources").joinpath("style", "convas.qss").read_text("utf-8")
    c = theme_colors(dark)
    return Template(text).substitute(
        border=c["border"], base=c["base"], accent=c["highlight"], muted=c["muted"],
        text=c["text"], hover=c["hover"], error=severity_color("error", dark).name(),
        warning=severity_color("warning", dark).name())


_following: set[int] = set()  # ids of applications whose theme follows the desktop


def apply_theme(app: QApplication, dark: bool | None = None) -> bool:
    """Switch ``app`` to the light (False) or dark (True) theme, or follow the desktop (None).

    Returns whether the dark theme is now shown. With None the theme changes again
    when the desktop's colour scheme does (Qt ≥ 6.5).
    """
    follow = dark is None
    _following.discard(id(app))
    hints = app.styleHints()
    if hasattr(hints, "setColorScheme"):  # Qt ≥ 6.8: native title bars follow too
        hints.setColorScheme(Qt.ColorScheme.Unknown if follow
                             else Qt.ColorScheme.Dark if dark else Qt.ColorScheme.Light)
    if follow:
        dark = system_prefers_dark(app)
    app.setStyle("Fusion")
    app.setPalette(make_palette(bool(dark)))
    app.setStyleSheet(style_sheet(bool(dark)))
    app.setProperty(_DARK_PROPERTY, bool(dark))
    if follow:
        _following.add(id(app))
        if hasattr(hints, "colorSchemeChanged") and not app.property("convas_theme_hooked"):
            hints.colorSchemeChanged.connect(lambda _scheme: _on_scheme_changed(app))
            app.setProperty("convas_theme_hooked", True)
    return bool(dark)


def _on_scheme_changed(app: QApplication) -> None:
    if id(app) in _following and app.property(_DARK_PROPERTY) != system_prefers_dark(app):
        apply_theme(app, None)


# ---- icons ------------------------------------------------------------------------------


def category_icon(category: str, dark: bool) -> QIcon:
    """A rounded square in the category's colour with a white glyph of what it does."""
    icon = QIcon()
    for size in (16, 32, 64):
        pix = category_pixmap(category, dark, size)
        icon.addPixmap(pix)
        icon.addPixmap(pix, QIcon.Mode.Selected)  # keep the colour on a selected row
    return icon


def category_pixmap(category: str, dark: bool, size: int = 16) -> QPixmap:
    pix = QPixmap(size, size)
    pix.fill(Qt.GlobalColor.transparent)
    p = QPainter(pix)
    p.setRenderHint(QPainter.RenderHint.Antialiasing)
    p.scale(size / 16.0, size / 16.0)
    p.setPen(Qt.PenStyle.NoPen)
    p.setBrush(category_color(category, dark))
    p.drawRoundedRect(QRectF(0.5, 0.5, 15, 15), 3.5, 3.5)
    pen = QPen(QColor("#ffffff"), 1.4, Qt.PenStyle.SolidLine, Qt.PenCapStyle.RoundCap,
               Qt.PenJoinStyle.RoundJoin)
    p.setPen(pen)
    p.setBrush(Qt.BrushStyle.NoBrush)
    _GLYPHS.get(category, _glyph_dot)(p)
    p.end()
    return pix


def _dots(p: QPainter, points: list[tuple[float, float]], r: float = 1.1,
          hollow: tuple[int, ...] = ()) -> None:
    for i, (x, y) in enumerate(points):
        p.setBrush(Qt.BrushStyle.NoBrush if i in hollow else QBrush(QColor("#ffffff")))
        p.drawEllipse(QPointF(x, y), r, r)
    p.setBrush(Qt.BrushStyle.NoBrush)


def _glyph_io(p: QPainter) -> None:  # an arrow into/out of the network
    p.drawLine(QPointF(8, 3.5), QPointF(8, 12.5))
    p.drawPolyline([QPointF(4.8, 9.3), QPointF(8, 12.5), QPointF(11.2, 9.3)])


def _glyph_conv(p: QPainter) -> None:  # a 3×3 kernel
    p.setPen(Qt.PenStyle.NoPen)
    _dots(p, [(4.5 + 3.5 * i, 4.5 + 3.5 * j) for j in range(3) for i in range(3)])


def _glyph_pool(p: QPainter) -> None:  # a 2×2 window
    p.drawRect(QRectF(4, 4, 8, 8))
    p.drawLine(QPointF(8, 4), QPointF(8, 12))
    p.drawLine(QPointF(4, 8), QPointF(12, 8))


def _glyph_activation(p: QPainter) -> None:  # ReLU
    p.drawPolyline([QPointF(3, 11), QPointF(8, 11), QPointF(13, 4)])


def _glyph_norm(p: QPainter) -> None:  # a bell curve
    path = QPainterPath(QPointF(2.5, 12))
    for i in range(1, 23):
        x = 2.5 + i * 0.5
        path.lineTo(x, 12 - 7.5 * math.exp(-((x - 8) ** 2) / 4.5))
    p.drawPath(path)


def _glyph_dropout(p: QPainter) -> None:  # some units dropped
    pts = [(5, 5), (11, 5), (5, 11), (11, 11)]
    _dots(p, pts, 1.7, hollow=(1, 2))


def _glyph_reshape(p: QPainter) -> None:  # rows laid out into one line
    for y in (4.5, 7.5):
        p.drawLine(QPointF(4, y), QPointF(9, y))
    p.drawLine(QPointF(3, 11.5), QPointF(13, 11.5))


def _glyph_linear(p: QPainter) -> None:  # fully connected
    left, right = [(4, 5), (4, 11)], [(12, 5), (12, 11)]
    thin = QPen(p.pen())
    thin.setWidthF(0.9)
    p.save()
    p.setPen(thin)
    for a in left:
        for b in right:
            p.drawLine(QPointF(*a), QPointF(*b))
    p.restore()
    p.setPen(Qt.PenStyle.NoPen)
    _dots(p, left + right, 1.5)


def _glyph_merge(p: QPainter) -> None:  # a plus
    p.drawLine(QPointF(8, 4), QPointF(8, 12))
    p.drawLine(QPointF(4, 8), QPointF(12, 8))


def _glyph_composite(p: QPainter) -> None:  # blocks inside a block
    p.drawRect(QRectF(3.5, 3.5, 6, 6))
    p.drawRect(QRectF(6.5, 6.5, 6, 6))


def _glyph_dot(p: QPainter) -> None:
    p.setPen(Qt.PenStyle.NoPen)
    _dots(p, [(8, 8)], 2.5)


_GLYPHS = {
    "Input/Output": _glyph_io, "Convolution": _glyph_conv, "Pooling": _glyph_pool,
    "Activation": _glyph_activation, "Normalisation": _glyph_norm,
    "Regularisation": _glyph_dropout, "Reshape": _glyph_reshape, "Linear": _glyph_linear,
    "Merge": _glyph_merge, "Composite": _glyph_composite,
}


def _painted_icon(draw) -> QIcon:
    """An icon drawn on a 16-unit canvas at 16 and 32 px, so it is crisp at high DPI."""
    icon = QIcon()
    for size in (16, 32):
        pix = QPixmap(size, size)
        pix.fill(Qt.GlobalColor.transparent)
        p = QPainter(pix)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        p.scale(size / 16.0, size / 16.0)
        draw(p)
        p.end()
        icon.addPixmap(pix)
    return icon


def severity_icon(severity: str, dark: bool) -> QIcon:
    """A red disc with "!" for errors, an amber triangle with "!" for warnings."""

    def draw(p: QPainter) -> None:
        p.setPen(Qt.PenStyle.NoPen)
        p.setBrush(severity_color(severity, dark))
        if severity == "error":
            p.drawEllipse(QRectF(1, 1, 14, 14))
        else:
            p.drawPolygon([QPointF(8, 1.2), QPointF(15.2, 14.5), QPointF(0.8, 14.5)])
        p.setPen(QPen(QColor("#ffffff"), 1.8, Qt.PenStyle.SolidLine, Qt.PenCapStyle.RoundCap))
        top, bottom = (4.2, 8.8) if severity == "error" else (5.6, 9.6)
        p.drawLine(QPointF(8, top), QPointF(8, bottom))
        p.drawPoint(QPointF(8, bottom + 2.6))

    return _painted_icon(draw)


def reset_icon(color: QColor) -> QIcon:
    """A circular "back" arrow, for the inspector's per-parameter reset button."""

    def draw(p: QPainter) -> None:
        p.setPen(QPen(color, 1.5, Qt.PenStyle.SolidLine, Qt.PenCapStyle.RoundCap,
                      Qt.PenJoinStyle.RoundJoin))
        p.drawArc(QRectF(3, 3, 10, 10), 100 * 16, 270 * 16)
        p.drawPolyline([QPointF(4.2, 2.6), QPointF(7.4, 3.1), QPointF(5.6, 5.9)])

    return _painted_icon(draw)


def pair_icon(color: QColor) -> QIcon:
    """Two boxes side by side: "edit height and width separately"."""

    def draw(p: QPainter) -> None:
        p.setPen(QPen(color, 1.3))
        p.drawRect(QRectF(1.5, 4.5, 5.5, 7))
        p.drawRect(QRectF(9, 4.5, 5.5, 7))

    return _painted_icon(draw)
