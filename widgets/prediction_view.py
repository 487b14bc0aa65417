"""The results of running a trained design on image files (File → Predict on images…).

A list of the images, each with its answer in one line (a thumbnail and "cat.png: X
97.1 %, O 2.3 %", "img.png: background, O" or "img.png: 2 boxes: X 0.93, O 0.71"),
and the chosen image large beside it: for a classifier with its top classes and
probabilities, for a segmentation design with the predicted mask overlaid and a legend
of the class colours, for a detector with its boxes drawn and listed. An image that could not
be used keeps its row, with the reason, so one bad file among hundreds is found.

The colours are the ones of the live segmentation view and of the mask PNGs
(``widgets.segmentation``). Plain numpy and Python data only, no torch: the caller
turns predictions into :class:`PredictionItem` objects, one at a time as they come.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from PySide6.QtCore import QRect, QSize, Qt
from PySide6.QtGui import QIcon, QImage, QPainter, QPixmap
from PySide6.QtWidgets import (
    QLabel,
    QListWidget,
    QListWidgetItem,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from .detection_view import box_colour_hex, render
from .probe_view import escape, swatch
from .segmentation import classes_present, colour_hex, overlay

THUMBNAIL = 48  # px, the side of a list row's picture
BOXES_SIDE = 384  # px: a detector's picture is drawn at least this large (crisp tags)
DETAIL_ROWS = 12  # detections listed under the picture (the best ones)


@dataclass(frozen=True)
class PredictionItem:
    """One image's prediction, as shown."""

    path: str                                   # the image file
    image: np.ndarray | None = None             # [H, W, 3] uint8, as read (maybe shrunk)
    top: tuple[tuple[str, float], ...] = ()     # classification: (class, probability)
    mask: np.ndarray | None = None              # segmentation: class map [h, w]
    classes: tuple[str, ...] = ()               # the class names, index order
    mask_file: str = ""                         # where the mask PNG was written
    error: str = ""                             # why this image has no prediction
    # detection: convas predict --json's "detections" (class, index, score, box in the
    # image's own pixels), and that own (width, height), which ``image`` may be shrunk from
    detections: tuple[dict, ...] | None = None
    own_size: tuple[int, int] = (0, 0)

    @property
    def name(self) -> str:
        return self.path.replace("\\", "/").rsplit("/", 1)[-1]

    def summary(self) -> str:
        """The one line of the list: the best classes, or the classes in the mask."""
        if self.error:
            return f"{self.name}: {self.error}"
        if self.mask is not None:
            return f"{self.name}: {', '.join(self.present()) or 'nothing'}"
        if self.detections is not None:
            n = len(self.detections)
            shown = ", ".join(f"{d['class']} {d['score']:.2f}" for d in self.detections[:4])
            more = ", …" if n > 4 else ""
            return f"{self.name}: {n} box{'es' if n != 1 else ''}" + (
                f": {shown}{more}" if n else " above the threshold")
        tops = ", ".join(f"{c} {100 * p:.1f} %" for c, p in self.top)
        return f"{self.name}: {tops or 'no class above the threshold'}"

    def present(self) -> list[str]:
        return [] if self.mask is None else classes_present(self.mask, self.classes)

    def picture(self) -> np.ndarray | None:
        """What the large pane shows: the image, with the mask overlaid when there is
        one ([H, W, 3] uint8)."""
        if self.image is None:
            return None
        if self.detections is not None:
            return self._boxes_drawn()
        if self.mask is None:
            return self.image
        return overlay(np.asarray(self.image).transpose(2, 0, 1), self.mask)

    def _boxes_drawn(self) -> np.ndarray:
        """The image enlarged (nearest neighbour) to at least BOXES_SIDE with its boxes
        and their "class score" tags."""
        image = np.asarray(self.image)
        h, w = image.shape[:2]
        scale = max(1, -(-BOXES_SIDE // max(h, w)))
        own_w, own_h = self.own_size if all(self.own_size) else (w, h)
        d = self.detections or ()
        boxes = np.array([x["box"] for x in d], np.float32).reshape(-1, 4)
        boxes *= np.array([w / own_w, h / own_h, w / own_w, h / own_h], np.float32)
        scores = np.array([x["score"] for x in d], np.float32)
        labels = np.array([x["index"] for x in d], np.int64)
        names = list(self.classes) or [x["class"] for x in d]
        return render(image.transpose(2, 0, 1), None, boxes, scores, labels, names,
                      scale=scale, tags=True).transpose(1, 2, 0)


class _Picture(QWidget):
    """An image scaled to fit, keeping its aspect ratio (nearest neighbour when
    enlarged, so a small mask stays crisp and every pixel shows its class colour)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._image = QImage()
        self.setMinimumSize(160, 160)

    def set_rgb(self, rgb: np.ndarray | None) -> None:
        self._image = QImage() if rgb is None else rgb_image(rgb)
        self.update()

    def image(self) -> QImage:
        return QImage(self._image)

    def sizeHint(self) -> QSize:  # noqa: N802 - Qt override
        return QSize(360, 360)

    def paintEvent(self, event) -> None:  # noqa: N802 - Qt override
        if self._image.isNull():
            return
        size = self._image.size().scaled(self.size(), Qt.AspectRatioMode.KeepAspectRatio)
        target = QRect((self.width() - size.width()) // 2,
                       (self.height() - size.height()) // 2, size.width(), size.height())
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform,
                              size.width() < self._image.width())
        painter.drawImage(target, self._image)
        painter.end()


def rgb_image(rgb: np.ndarray) -> QImage:
    """A [H, W, 3] uint8 array as a QImage that owns its pixels."""
    data = np.ascontiguousarray(rgb, dtype=np.uint8)
    h, w = data.shape[:2]
    return QImage(data.data, w, h, 3 * w, QImage.Format.Format_RGB888).copy()


class PredictionView(QWidget):
    """The list of predictions and the chosen one large, with its classes."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._items: list[PredictionItem] = []
        self.list = QListWidget(self)
        self.list.setIconSize(QSize(THUMBNAIL, THUMBNAIL))
        self.list.setUniformItemSizes(True)
        self.list.currentRowChanged.connect(self._show)
        self.picture = _Picture(self)
        self.details = QLabel(self)
        self.details.setWordWrap(True)
        self.details.setTextFormat(Qt.TextFormat.RichText)
        self.details.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.details.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        # room for a few classes or a legend that wraps: the picture takes the rest
        self.details.setMinimumHeight(5 * self.details.fontMetrics().lineSpacing())
        right = QWidget(self)
        column = QVBoxLayout(right)
        column.setContentsMargins(0, 0, 0, 0)
        column.addWidget(self.picture, 1)
        column.addWidget(self.details)
        splitter = QSplitter(Qt.Orientation.Horizontal, self)
        splitter.addWidget(self.list)
        splitter.addWidget(right)
        splitter.setStretchFactor(0, 2)
        splitter.setStretchFactor(1, 3)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(splitter)

    def clear(self) -> None:
        self._items.clear()
        self.list.clear()
        self.picture.set_rgb(None)
        self.details.setText("")

    def add_items(self, items: Sequence[PredictionItem]) -> None:
        """Append results as they come; the first one is shown at once."""
        for item in items:
            self._items.append(item)
            row = QListWidgetItem(item.summary())
            row.setToolTip(item.path + ("\n" + item.error if item.error else ""))
            picture = item.picture()
            if picture is not None:
                row.setIcon(QIcon(QPixmap.fromImage(rgb_image(picture)).scaled(
                    THUMBNAIL, THUMBNAIL, Qt.AspectRatioMode.KeepAspectRatio,
                    Qt.TransformationMode.SmoothTransformation)))
            self.list.addItem(row)
        if self.list.currentRow() < 0 and self._items:
            self.list.setCurrentRow(0)

    def items(self) -> list[PredictionItem]:
        return list(self._items)

    def row_texts(self) -> list[str]:
        return [self.list.item(i).text() for i in range(self.list.count())]

    def shown_image(self) -> QImage:
        """The large picture as shown now (the overlaid image for a mask)."""
        return self.picture.image()

    def _show(self, row: int) -> None:
        if not 0 <= row < len(self._items):
            return
        item = self._items[row]
        self.picture.set_rgb(item.picture())
        self.details.setText(details_html(item))


def details_html(item: PredictionItem) -> str:
    """The text under the large picture: the top classes with their probabilities, or
    the legend of the mask's classes and where the mask was saved."""
    name = f"<b>{escape(item.name)}</b>"
    if item.error:
        return f"{name}<br>{escape(item.error)}"
    if item.detections is not None:
        rows = "".join(
            f"<tr><td>{swatch(box_colour_hex(d['index']))}&nbsp;{escape(str(d['class']))}</td>"
            f"<td align='right'>&nbsp;{d['score']:.3f}</td>"
            f"<td>&nbsp;[{', '.join(f'{v:.1f}' for v in d['box'])}]</td></tr>"
            for d in item.detections[:DETAIL_ROWS])
        more = len(item.detections) - DETAIL_ROWS
        return (f"{name}: {len(item.detections)} detection"
                f"{'s' if len(item.detections) != 1 else ''} (class, score, box x1, y1, x2, "
                f"y2 in the image's pixels)<table>{rows}</table>"
                + (f"… and {more} more (convas predict --json lists all)" if more > 0 else ""))
    if item.mask is None:
        rows = "".join(f"<tr><td>{escape(c)}</td><td align='right'>&nbsp;{100 * p:.1f} %"
                       f"</td></tr>" for c, p in item.top)
        return f"{name}<table>{rows}</table>" if rows else f"{name}<br>no class above the " \
                                                            "threshold"
    present = {int(v) for v in np.unique(item.mask)}
    legend = []
    for i, c in enumerate(item.classes):
        label = f"<b>{escape(c)}</b>" if i in present else escape(c)
        label += " (not coloured)" if i == 0 else ""   # the overlay leaves class 0 out
        legend.append(f"{swatch(colour_hex(i))}&nbsp;{label}")
    saved = f"<br>mask saved as {escape(item.mask_file)}" if item.mask_file else ""
    return (f"{name}: {escape(', '.join(item.present()))}<br>"
            + "&nbsp;&nbsp; ".join(legend) + saved)
