"""What the Training dock's live probe views share, whatever the task: an image pane that
scales a picture to fit with nearest neighbour, and a view with a title line, a choice
of probe image and a legend of class colours.

``SegmentationView`` (mask overlaid beside the true mask) and ``DetectionView`` (boxes
over the image) differ only in what they draw and what their title and legend say; the
probe bookkeeping (which image, the spin box that picks it, the request for its
prediction) is written once here so the two cannot drift apart.

Widgets take plain numpy only: probe images are [N,C,H,W] as stored; targets are
whatever the task's true labels are ([N,H,W] masks, [N,M,5] box rows), or None.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PySide6.QtCore import QRect, QRectF, QSize, Qt, Signal
from PySide6.QtGui import QImage, QPainter, QTextDocument
from PySide6.QtWidgets import QHBoxLayout, QLabel, QLayout, QSpinBox, QVBoxLayout, QWidget

LEGEND_GAP = "&nbsp;&nbsp;&nbsp; "   # between two legend entries


def escape(text: str) -> str:
    """``text`` safe inside a rich-text label (a class may be called "<unk>")."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def nbsp(text: str) -> str:
    """Spaces that never break, so an entry wraps to the next line as a whole."""
    return text.replace(" ", "&nbsp;")


def swatch(colour: str) -> str:
    """A small block of ``colour`` (#rrggbb) for a rich-text legend."""
    return (f'<span style="background-color:{colour}; color:{colour};">'
            "&#9608;&#9608;</span>")


class ImagePane(QWidget):
    """An RGB image scaled to fit with nearest neighbour (a 64×64 picture stays crisp and
    every drawn pixel is one of the image's), top-aligned and centred; subclasses draw
    over it in ``paint_over``."""

    MINIMUM = 96
    HINT = 256

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._image = QImage()
        self.setMinimumSize(self.MINIMUM, self.MINIMUM)

    def set_rgb(self, rgb: np.ndarray | None) -> None:
        """The picture, [H,W,3] uint8, or None for none."""
        if rgb is None:
            self._image = QImage()
        else:
            data = np.ascontiguousarray(rgb, dtype=np.uint8)
            h, w = data.shape[:2]
            self._image = QImage(data.data, w, h, 3 * w, QImage.Format.Format_RGB888).copy()
        self.update()

    def image(self) -> QImage:
        return QImage(self._image)

    def target(self) -> QRect:
        """Where the image is drawn: as large as fits, aspect kept, centred and
        top-aligned (so two panes' images line up with their captions)."""
        if self._image.isNull():
            return QRect()
        w, h = self._image.width(), self._image.height()
        scale = min(self.width() / w, self.height() / h)
        size = QSize(max(1, int(w * scale)), max(1, int(h * scale)))
        return QRect((self.width() - size.width()) // 2, 0, size.width(), size.height())

    def sizeHint(self) -> QSize:  # noqa: N802 - Qt override
        return QSize(self.HINT, self.HINT)

    def paint_over(self, painter: QPainter, target: QRectF) -> None:
        """Drawn over the image, in pane coordinates (``target`` is the image's rect)."""

    def paintEvent(self, event) -> None:  # noqa: N802 - Qt override
        if self._image.isNull():
            return
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, False)
        target = self.target()
        painter.drawImage(target, self._image)
        self.paint_over(painter, QRectF(target))
        painter.end()


class ProbeView(QWidget):
    """A title line with the probe image spin box, the task's panes under it (the
    ``body`` a subclass passes to ``_lay_out``) and a legend at the bottom. Subclasses
    draw the probe in ``_show_picture`` and ``_clear_picture`` and fill the legend in
    ``_update_legend``; choosing another probe emits ``probe_requested``."""

    probe_requested = Signal(int)  # the index of the probe image the user picked
    EMPTY = ""                     # the title while there is no run
    SPIN_TIP = "Which validation image the prediction is shown for"

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._classes: list[str] = []
        self._images: np.ndarray | None = None
        self._targets: np.ndarray | None = None
        self._index = 0
        self.title = QLabel(self.EMPTY)
        self.title.setWordWrap(True)
        self.probe_spin = QSpinBox()
        self.probe_spin.setRange(1, 1)
        self.probe_spin.setPrefix("probe image ")
        self.probe_spin.setToolTip(self.SPIN_TIP)
        self.probe_spin.valueChanged.connect(self._on_spin)
        self.legend = QLabel()
        self.legend.setWordWrap(True)
        self.legend.setTextFormat(Qt.TextFormat.RichText)

    def _lay_out(self, body: QWidget | QLayout) -> None:
        """Title and spin box above ``body`` (stretching), the legend below."""
        bar = QHBoxLayout()
        bar.addWidget(self.title, 1)
        bar.addWidget(self.probe_spin)
        layout = QVBoxLayout(self)
        layout.addLayout(bar)
        if isinstance(body, QLayout):
            layout.addLayout(body, 1)
        else:
            layout.addWidget(body, 1)
        layout.addWidget(self.legend)

    # ----------------------------------------------------------------- API
    def set_classes(self, classes: Sequence[str]) -> None:
        """The run's class names (index order); the legend lists each in its colour."""
        self._classes = [str(c) for c in classes]
        self._update_legend()

    def set_probes(self, images: np.ndarray, targets: np.ndarray | None,
                   current: int = 0) -> None:
        """The probe images ([N,C,H,W] as stored) and their true labels (or None when
        the trainer sent none); shows image ``current`` without a prediction."""
        self._images = np.asarray(images)
        self._targets = None if targets is None else np.asarray(targets)
        count = len(self._images)
        self.probe_spin.blockSignals(True)
        self.probe_spin.setRange(1, max(1, count))
        self.probe_spin.blockSignals(False)
        self.probe_spin.setEnabled(count > 1)
        self.show_probe(current)

    def show_probe(self, index: int) -> None:
        """Switch to another probe image: its picture and true labels at once; its
        prediction comes with the next ``show_prediction``."""
        if not self.has_probes():
            return
        self._index = min(max(int(index), 0), len(self._images) - 1)
        self.probe_spin.blockSignals(True)
        self.probe_spin.setValue(self._index + 1)
        self.probe_spin.blockSignals(False)
        self._show_picture()
        self._update_legend()

    def clear(self) -> None:
        """No run: no images, no legend, the explaining sentence again."""
        self._images = self._targets = None
        self._clear_picture()
        self.title.setText(self.EMPTY)
        self._update_legend()

    def has_probes(self) -> bool:
        return self._images is not None and len(self._images) > 0

    def probe_index(self) -> int:
        return self._index

    def legend_text(self) -> str:
        """The legend as a person reads it (plain text, no markup)."""
        document = QTextDocument()
        document.setHtml(self.legend.text())
        return document.toPlainText().replace("\u00a0", " ")

    # ----------------------------------------------------------- internals
    def _select(self, probe_index: int) -> bool:
        """Before a prediction is drawn: its probe shown; False without probes."""
        if not self.has_probes():
            return False
        if probe_index != self._index:
            self.show_probe(probe_index)
        return True

    def _title_words(self, step: int | None) -> list[str]:
        """The title's start, "Probe image 3 · step 1,200"; the task adds its figures."""
        words = [f"Probe image {self._index + 1}"]
        if step is not None:
            words.append(f"step {step:,}")
        return words

    def _on_spin(self, value: int) -> None:
        """The person picked another probe image: show it now, and ask for its
        prediction."""
        self.show_probe(value - 1)
        self.probe_requested.emit(self._index)

    def _show_picture(self) -> None:
        """Draw probe ``self._index`` with its true labels and no prediction."""
        raise NotImplementedError

    def _clear_picture(self) -> None:
        """Draw nothing (the probes are gone)."""
        raise NotImplementedError

    def _update_legend(self) -> None:
        raise NotImplementedError
