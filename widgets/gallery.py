"""A thumbnail gallery of small images with a caption under each.

It serves two places: after each training epoch it shows the misclassified validation
images with their predicted and true labels, so a person sees *what* the network gets
wrong rather than only how often; and next to the training settings it previews a few
samples of the chosen dataset, so a person sees what the network will be fed.

Dataset images are tiny (28×28 MNIST, 32×32 CIFAR). Smooth scaling blurs them into
mush at thumbnail size, so they are scaled up with nearest-neighbour
(Qt.FastTransformation): every source pixel stays a crisp block and what is shown is
exactly what the network sees. The gallery is rebuilt after every epoch, so it is kept
cheap: all items live in one QListWidget (no widget per thumbnail), the view is
repainted once per call, and at most MAX_IMAGES images are shown; more would be slow to
build and too many to look at anyway.

Widgets take plain numpy and Python data only: the caller turns tensors into arrays.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QIcon, QImage, QPixmap
from PySide6.QtWidgets import (
    QAbstractItemView,
    QLabel,
    QListView,
    QListWidget,
    QListWidgetItem,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

MAX_IMAGES = 64  # images past this many are ignored by ImageGallery.set_images
DEFAULT_THUMBNAIL = 96  # px, the side of the square each image is scaled into
MIN_THUMBNAIL = 8
MAX_CLASS_CHARS = 12  # class names longer than this are elided in captions
_PAD = 12  # px around a thumbnail and its caption inside a grid cell


def to_rgb8(images: np.ndarray) -> np.ndarray:
    """Turn a batch of images as a network sees them into something Qt can show.

    `images` is [N, C, H, W]: C == 3 is taken as RGB and C == 1 as grey; any other
    channel count has no agreed colour meaning, so its first channel is shown as grey.
    uint8 values are 0..255; floats are taken as 0..1 (as after ToTensor), clipped, with
    NaN shown as black so one bad value cannot break the whole picture. Returns a
    C-contiguous uint8 [N, H, W, 3] array, the layout QImage.Format_RGB888 reads.
    """
    arr = np.asarray(images)
    if arr.ndim != 4:
        raise ValueError(
            f"images must be shaped [N, C, H, W] (4 dimensions), got {arr.ndim} "
            f"dimension(s) with shape {arr.shape}"
        )
    n, c, h, w = arr.shape
    if c == 0 or h == 0 or w == 0:
        raise ValueError(f"images need at least one channel and one pixel, got shape {arr.shape}")
    if arr.dtype == np.uint8:
        data = arr
    elif arr.dtype == np.bool_ or np.issubdtype(arr.dtype, np.floating):
        f = np.nan_to_num(arr.astype(np.float32), nan=0.0, posinf=1.0, neginf=0.0)
        data = np.rint(np.clip(f, 0.0, 1.0) * 255.0).astype(np.uint8)
    elif np.issubdtype(arr.dtype, np.integer):
        data = np.clip(arr, 0, 255).astype(np.uint8)
    else:
        raise TypeError(f"images must be uint8, integer or float, got dtype {arr.dtype}")
    if c == 3:
        rgb = data.transpose(0, 2, 3, 1)
    else:
        rgb = np.repeat(data[:, 0, :, :, np.newaxis], 3, axis=3)
    return np.ascontiguousarray(rgb, dtype=np.uint8)


def _elide(name: str, limit: int = MAX_CLASS_CHARS) -> str:
    return name if len(name) <= limit else name[: limit - 1] + "…"


def _class_name(index: int, classes: Sequence[str]) -> str:
    """The class's name, or its number when the dataset's class list does not cover it
    (a model with more outputs than classes), so a caption never raises."""
    i = int(index)
    return str(classes[i]) if 0 <= i < len(classes) else str(i)


def _percent(confidence: float) -> str | None:
    p = float(confidence)
    return None if math.isnan(p) else f"{round(min(max(p, 0.0), 1.0) * 100)}%"


def misclassified_captions(
    true: Sequence[int],
    predicted: Sequence[int],
    classes: Sequence[str],
    confidence: Sequence[float] | None = None,
) -> list[str]:
    """Two short lines per mistake, "pred: cat (87%)" over "true: dog".

    The prediction comes first because it is the surprise; the confidence tells a
    confident mistake (often a mislabelled or truly ambiguous image) from a guess. The
    words match the confusion matrix's "pred:" / "true:" headers. Names are elided so a
    caption fits under a ~96 px thumbnail; misclassified_tooltips gives the full text.
    """
    captions = []
    for pred, truth, pct in _mistakes(true, predicted, classes, confidence):
        line = f"pred: {_elide(pred)}" + (f" ({pct})" if pct is not None else "")
        captions.append(f"{line}\ntrue: {_elide(truth)}")
    return captions


def _mistakes(true: Sequence[int], predicted: Sequence[int], classes: Sequence[str],
              confidence: Sequence[float] | None) -> list[tuple[str, str, str | None]]:
    """(predicted name, true name, confidence text) per mistake, lengths checked."""
    if len(true) != len(predicted):
        raise ValueError(f"{len(true)} true labels but {len(predicted)} predictions")
    if confidence is not None and len(confidence) != len(true):
        raise ValueError(f"{len(confidence)} confidences for {len(true)} images")
    return [(_class_name(p, classes), _class_name(t, classes),
             _percent(confidence[i]) if confidence is not None else None)
            for i, (t, p) in enumerate(zip(true, predicted, strict=True))]


def misclassified_tooltips(
    true: Sequence[int],
    predicted: Sequence[int],
    classes: Sequence[str],
    confidence: Sequence[float] | None = None,
) -> list[str]:
    """The same facts as misclassified_captions, in full words and unelided names, for
    hovering over a thumbnail whose caption had to be shortened."""
    return [f"Predicted: {pred}" + (f" ({pct} confident)" if pct is not None else "")
            + f"\nTrue class: {truth}"
            for pred, truth, pct in _mistakes(true, predicted, classes, confidence)]


def misclassified_title(shown: int, wrong: int, total: int, epoch: int | None) -> str:
    """One sentence above the gallery, so a person knows how many mistakes there were
    in all and which of them the (capped) gallery shows.

    The caller is expected to pass the mistakes most confident first: those say most
    about the model (or about mislabelled data).
    """
    prefix = f"Epoch {epoch}: " if epoch is not None else ""
    if wrong <= 0:
        if total <= 0:
            text = "there are no validation images to check."
        elif total == 1:
            text = "the one validation image was classified correctly."
        else:
            text = f"every one of the {total} validation images was classified correctly."
    else:
        noun = "image" if total == 1 else "images"
        text = f"{wrong} of {total} validation {noun} misclassified"
        if shown <= 0:
            text += " (none shown)"
        elif shown >= wrong:
            text += " (all shown)" if wrong == 1 else " (all shown, most confident first)"
        elif shown == 1:
            text += " (showing the most confident mistake)"
        else:
            text += f" (showing the {shown} most confident mistakes)"
    if not prefix:
        return text[:1].upper() + text[1:]
    return prefix + text


class ImageGallery(QWidget):
    """A title over a wrapping grid of captioned thumbnails, or over a message instead."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("imageGallery")
        self._title = QLabel(self)
        self._title.setObjectName("galleryTitle")
        self._title.setWordWrap(True)

        self._list = QListWidget(self)
        self._list.setObjectName("galleryList")
        self._list.setViewMode(QListView.ViewMode.IconMode)
        self._list.setFlow(QListView.Flow.LeftToRight)
        self._list.setWrapping(True)
        self._list.setResizeMode(QListView.ResizeMode.Adjust)
        self._list.setMovement(QListView.Movement.Static)
        self._list.setUniformItemSizes(True)
        self._list.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self._list.setDragEnabled(False)
        self._list.setDragDropMode(QAbstractItemView.DragDropMode.NoDragDrop)
        # Selecting would tint the thumbnail with the highlight colour and misstate its
        # pixels; the gallery is for looking, not picking.
        self._list.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
        self._list.setFocusPolicy(Qt.FocusPolicy.NoFocus)  # no focus frame on item 0
        self._list.setWordWrap(False)  # captions carry their own line breaks; Qt elides
        self._list.setTextElideMode(Qt.TextElideMode.ElideMiddle)

        self._message = QLabel(self)
        self._message.setObjectName("galleryMessage")
        self._message.setWordWrap(True)
        self._message.setAlignment(Qt.AlignmentFlag.AlignCenter)

        self._stack = QStackedWidget(self)
        self._stack.addWidget(self._list)
        self._stack.addWidget(self._message)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self._title)
        layout.addWidget(self._stack, 1)

        self._size = DEFAULT_THUMBNAIL
        self._rgb = np.zeros((0, 1, 1, 3), dtype=np.uint8)
        self._captions: list[str] = []
        self._tooltips: list[str] = []
        self._thumbs: list[QImage] = []
        self._list.setIconSize(QSize(self._size, self._size))
        self.clear()

    # --- public API -------------------------------------------------------------------

    def set_images(
        self,
        images: np.ndarray,
        captions: Sequence[str],
        title: str = "",
        tooltips: Sequence[str] | None = None,
    ) -> None:
        """Replace everything shown with `images` ([N, C, H, W], see to_rgb8), one
        caption each. Only the first MAX_IMAGES are shown; `title` is shown as given.

        Everything is checked before anything changes, so a bad call leaves the gallery
        as it was.
        """
        arr = np.asarray(images)
        if arr.ndim != 4:
            to_rgb8(arr)  # raises with the shape in the message
        n = arr.shape[0]
        if len(captions) != n:
            raise ValueError(f"{len(captions)} captions for {n} images")
        if tooltips is not None and len(tooltips) != n:
            raise ValueError(f"{len(tooltips)} tooltips for {n} images")
        keep = min(n, MAX_IMAGES)
        rgb = to_rgb8(arr[:keep]) if keep else np.zeros((0, 1, 1, 3), dtype=np.uint8)
        self._rgb = rgb
        self._captions = [str(c) for c in captions[:keep]]
        self._tooltips = (
            [str(t) for t in tooltips[:keep]] if tooltips is not None else list(self._captions)
        )
        self._set_title(title)
        self._message.clear()
        self._stack.setCurrentWidget(self._list)
        self._fill()

    def show_message(self, text: str, title: str = "") -> None:
        """Show `text` where the thumbnails were (nothing to show, or why not: no
        mistakes this epoch, a dataset that failed to load). The old title goes too,
        unless a new one is given, so a stale epoch's headline never sits over it."""
        self._drop_items()
        self._set_title(title)
        self._message.setText(text)
        self._stack.setCurrentWidget(self._message)

    def clear(self) -> None:
        """Show nothing: no thumbnails, no title, no message."""
        self._drop_items()
        self._set_title("")
        self._message.clear()
        self._stack.setCurrentWidget(self._list)

    def set_thumbnail_size(self, px: int) -> None:
        """Scale every image into a `px`×`px` square (aspect ratio kept), now and for
        later calls; the images shown are rebuilt from the kept pixels, not rescaled
        thumbnails, so they stay crisp."""
        px = int(px)
        if px < MIN_THUMBNAIL:
            raise ValueError(f"thumbnail size must be at least {MIN_THUMBNAIL} px, got {px}")
        self._size = px
        self._list.setIconSize(QSize(px, px))
        self._fill()

    def count(self) -> int:
        return self._list.count()

    def captions(self) -> list[str]:
        return [self._list.item(i).text() for i in range(self._list.count())]

    def tooltips(self) -> list[str]:
        return [self._list.item(i).toolTip() for i in range(self._list.count())]

    def title(self) -> str:
        return self._title.text()

    def message(self) -> str:
        """The message shown instead of thumbnails; "" while thumbnails are shown."""
        return self._message.text() if self._stack.currentWidget() is self._message else ""

    def thumbnail(self, i: int) -> QImage:
        """The image drawn for item `i`, at full thumbnail size in device pixels (the
        thumbnail size itself on an ordinary, non-HiDPI screen)."""
        if not 0 <= i < len(self._thumbs):
            raise IndexError(f"no thumbnail {i}: the gallery shows {len(self._thumbs)}")
        return QImage(self._thumbs[i])

    def list_widget(self) -> QListWidget:
        return self._list

    # --- internals --------------------------------------------------------------------

    def _set_title(self, title: str) -> None:
        self._title.setText(title)
        self._title.setVisible(bool(title))

    def _drop_items(self) -> None:
        self._rgb = np.zeros((0, 1, 1, 3), dtype=np.uint8)
        self._captions = []
        self._tooltips = []
        self._thumbs = []
        self._list.clear()

    def _scaled(self, rgb: np.ndarray, dpr: float) -> QImage:
        """One [H, W, 3] uint8 image as a QImage scaled into the thumbnail square."""
        h, w = rgb.shape[:2]
        # QImage does not own a buffer it is built on: copy() before `rgb` can go away.
        source = QImage(rgb.data, w, h, 3 * w, QImage.Format.Format_RGB888).copy()
        side = max(1, round(self._size * dpr))
        return source.scaled(
            side, side, Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.FastTransformation
        )

    def _grid_size(self) -> QSize:
        """One cell for every item (uniform sizes keep layout cheap): wide enough for the
        longest caption line within reason, tall enough for the most lines."""
        metrics = self._list.fontMetrics()
        lines = [line for caption in self._captions for line in caption.split("\n")]
        widest = max((metrics.horizontalAdvance(line) for line in lines), default=0)
        width = min(max(self._size, widest), max(2 * self._size, 160)) + _PAD
        rows = max((caption.count("\n") + 1 for caption in self._captions), default=1)
        height = self._size + rows * metrics.lineSpacing() + _PAD
        return QSize(width, height)

    def _fill(self) -> None:
        """Rebuild the items from the kept pixels and captions with one repaint."""
        self._list.setUpdatesEnabled(False)
        try:
            self._list.clear()
            dpr = self.devicePixelRatioF()
            self._thumbs = [self._scaled(self._rgb[i], dpr) for i in range(len(self._captions))]
            self._list.setGridSize(self._grid_size())
            for image, caption, tip in zip(
                self._thumbs, self._captions, self._tooltips, strict=True
            ):
                pixmap = QPixmap.fromImage(image)
                pixmap.setDevicePixelRatio(dpr)
                item = QListWidgetItem(QIcon(pixmap), caption)
                item.setToolTip(tip)
                item.setTextAlignment(Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignTop)
                self._list.addItem(item)
        finally:
            self._list.setUpdatesEnabled(True)
