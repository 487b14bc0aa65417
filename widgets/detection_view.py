"""Detection results in colour: boxes drawn over images, and the live probe view.

Predicted boxes are solid, in their class's colour on a light rim, each with a "label
score" tag; true boxes are thin and dashed (class colour over white, so the dashes show
on a dark or a light image alike), drawn underneath, so a box that sits on its truth
reads at a glance. The same drawing serves the Training dock's probe view, the gallery of the
worst validation images, the dataset preview and File → Predict.

Colours: detection class k takes colour k + 1 of the one class colour table
(``widgets.segmentation``, the table of the mask PNGs). Colour 0 is the segmentation
background's black, which would vanish on dark images; and with this offset a glyph
keeps its colour between shapes-seg (where "X" is class 1) and shapes-det (where it
is class 0), as VOC numbers its detection classes after its background.

Widgets take plain numpy only: true boxes are rows [G,5] (class, x1, y1, x2, y2 in the
image's pixels; class −1 rows are padding), predictions boxes [D,4], scores [D] and
class indexes [D].
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PySide6.QtCore import QPointF, QRect, QRectF, QSize, Qt
from PySide6.QtGui import QColor, QFont, QFontMetricsF, QImage, QPainter, QPen
from PySide6.QtWidgets import QWidget

from .gallery import to_rgb8
from .probe_view import LEGEND_GAP, ImagePane, ProbeView, escape, swatch
from .segmentation import colour_of

MATCH_IOU = 0.5      # a prediction finds a true box of its class overlapping this much
TAG_POINT_SIZE = 8.0


def box_colour(index: int) -> tuple[int, int, int]:
    """Detection class ``index``'s colour (the class table's colour index + 1)."""
    return colour_of(int(index) + 1)


def box_colour_hex(index: int) -> str:
    r, g, b = box_colour(index)
    return f"#{r:02x}{g:02x}{b:02x}"


def true_rows(rows: np.ndarray | None) -> np.ndarray:
    """An image's box rows without the padding (class −1), as float [G,5]."""
    if rows is None:
        return np.zeros((0, 5), dtype=np.float32)
    a = np.asarray(rows, dtype=np.float32).reshape(-1, 5)
    return a[a[:, 0] >= 0]


def class_name(index: int, classes: Sequence[str]) -> str:
    i = int(index)
    return str(classes[i]) if 0 <= i < len(classes) else f"class {i}"


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of boxes [N,4] against [M,4] (x1, y1, x2, y2), [N,M]."""
    a, b = np.asarray(a, np.float64).reshape(-1, 4), np.asarray(b, np.float64).reshape(-1, 4)
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(rb - lt, 0, None), axis=2)
    area = lambda x: np.prod(np.clip(x[:, 2:] - x[:, :2], 0, None), axis=1)  # noqa: E731
    union = area(a)[:, None] + area(b)[None, :] - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def match_counts(truth: np.ndarray, boxes: np.ndarray, labels: np.ndarray,
                 iou: float = MATCH_IOU) -> tuple[int, int, int]:
    """(found, missed, false): predictions (best first) each take the unmatched true box
    of their class they overlap most, if by ``iou`` at least — the rule the trainer's
    "missed, false" counts follow."""
    t = true_rows(truth)
    boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
    labels = np.asarray(labels).reshape(-1).astype(np.int64)
    taken = np.zeros(len(t), dtype=bool)
    overlaps = box_iou(boxes, t[:, 1:5]) if len(t) and len(boxes) else None
    found = 0
    for d in range(len(boxes)):
        if overlaps is None:
            break
        candidates = np.where((t[:, 0].astype(np.int64) == labels[d]) & ~taken,
                              overlaps[d], -1.0)
        best = int(np.argmax(candidates))
        if candidates[best] >= iou:
            taken[best] = True
            found += 1
    return found, len(t) - found, len(boxes) - found


def paint_boxes(painter: QPainter, target: QRectF, image_hw: tuple[int, int],
                truth: np.ndarray | None, boxes: np.ndarray | None = None,
                scores: np.ndarray | None = None, labels: np.ndarray | None = None,
                classes: Sequence[str] = (), tags: bool = True, line: float = 2.0) -> None:
    """Draw true boxes (dashed, thin) and predictions (solid, tagged) for an image of
    ``image_hw`` pixels drawn into ``target``; box coordinates are image pixels."""
    h, w = image_hw
    sx, sy = target.width() / max(w, 1), target.height() / max(h, 1)

    def rect(b) -> QRectF:
        return QRectF(target.x() + float(b[0]) * sx, target.y() + float(b[1]) * sy,
                      (float(b[2]) - float(b[0])) * sx, (float(b[3]) - float(b[1])) * sy)

    painter.save()
    painter.setRenderHint(QPainter.RenderHint.Antialiasing, False)
    painter.setBrush(Qt.BrushStyle.NoBrush)
    thin = max(1.0, round(line / 2))   # whole pixels: a thumbnail's scaling keeps them
    for row in true_rows(truth):
        r = rect(row[1:5])
        painter.setPen(QPen(QColor(255, 255, 255, 200), thin))
        painter.drawRect(r)
        dashed = QPen(QColor(*box_colour(row[0])), thin, Qt.PenStyle.CustomDashLine)
        dashed.setDashPattern([3, 3])
        painter.setPen(dashed)
        painter.drawRect(r)
    if boxes is not None and len(boxes):
        boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
        labels = np.zeros(len(boxes), np.int64) if labels is None else np.asarray(labels)
        font = QFont(painter.font())
        font.setPointSizeF(TAG_POINT_SIZE)
        painter.setFont(font)
        metrics = QFontMetricsF(font)
        # the worst drawn first, so the best box and its tag end up on top
        for d in reversed(range(len(boxes))):
            colour = QColor(*box_colour(labels[d]))
            r = rect(boxes[d])
            # a light rim under the line: the table's colours are dark, as are most
            # images, and the rim keeps a box visible on either
            for pen in (QPen(QColor(255, 255, 255, 190), line + 2), QPen(colour, line)):
                pen.setJoinStyle(Qt.PenJoinStyle.MiterJoin)
                painter.setPen(pen)
                painter.drawRect(r)
            if tags:
                text = class_name(labels[d], classes) + (
                    f" {float(scores[d]):.2f}" if scores is not None else "")
                size = QSize(int(metrics.horizontalAdvance(text)) + 4,
                             int(metrics.height()) + 1)
                top = r.top() - size.height() if r.top() - size.height() >= target.top() \
                    else r.top()
                tag = QRectF(QPointF(r.left() - line / 2, top), size.toSizeF())
                painter.fillRect(tag, colour)
                painter.setPen(QColor("white"))
                painter.drawText(tag, Qt.AlignmentFlag.AlignCenter, text)
    painter.restore()


def render(image: np.ndarray, truth: np.ndarray | None, boxes: np.ndarray | None = None,
           scores: np.ndarray | None = None, labels: np.ndarray | None = None,
           classes: Sequence[str] = (), scale: int = 2, tags: bool = False,
           line: float = 2.0) -> np.ndarray:
    """``image`` ([C,H,W] as stored) enlarged ``scale`` times (nearest neighbour) with
    its boxes drawn: [3, H·scale, W·scale] uint8, the layout ImageGallery takes."""
    rgb = np.ascontiguousarray(to_rgb8(np.asarray(image)[None])[0])
    h, w = rgb.shape[:2]
    picture = QImage(rgb.data, w, h, 3 * w, QImage.Format.Format_RGB888).scaled(
        w * scale, h * scale, Qt.AspectRatioMode.IgnoreAspectRatio,
        Qt.TransformationMode.FastTransformation).convertToFormat(QImage.Format.Format_RGB888)
    painter = QPainter(picture)
    paint_boxes(painter, QRectF(0, 0, w * scale, h * scale), (h, w), truth, boxes, scores,
                labels, classes, tags, line)
    painter.end()
    return qimage_to_chw(picture)


def qimage_to_chw(image: QImage) -> np.ndarray:
    """An RGB888 QImage as [3,H,W] uint8 (each scan line may be padded)."""
    image = image.convertToFormat(QImage.Format.Format_RGB888)
    w, h, stride = image.width(), image.height(), image.bytesPerLine()
    data = np.frombuffer(image.constBits(), dtype=np.uint8, count=stride * h)
    return data.reshape(h, stride)[:, :3 * w].reshape(h, w, 3).transpose(2, 0, 1).copy()


def render_batch(images: np.ndarray, truths: Sequence[np.ndarray | None],
                 detections: Sequence[np.ndarray] | None = None, scale: int = 2) -> np.ndarray:
    """``render`` for a batch, detections as rows [D,6] (class, score, x1, y1, x2, y2):
    [N,3,H·scale,W·scale] uint8, no tags (a thumbnail has no room for them) and lines
    thick enough to survive the gallery's shrinking (nearest neighbour) to 96 px."""
    out = []
    for i, image in enumerate(images):
        d = (np.zeros((0, 6), np.float32) if detections is None
             else np.asarray(detections[i], np.float32).reshape(-1, 6))
        out.append(render(image, truths[i], d[:, 2:6], d[:, 1], d[:, 0].astype(np.int64),
                          scale=scale, line=3.0))
    return np.stack(out) if out else np.zeros((0, 3, 1, 1), dtype=np.uint8)


def boxes_caption(truth: np.ndarray | None, classes: Sequence[str]) -> str:
    """What an image holds, "X ×2 + square" (class order), for a dataset preview."""
    t = true_rows(truth)
    counts = np.bincount(t[:, 0].astype(np.int64), minlength=0) if len(t) else []
    parts = [class_name(k, classes) + (f" ×{n}" if n > 1 else "")
             for k, n in enumerate(counts) if n]
    return " + ".join(parts) or "no boxes"


def worst_box_captions(errors: np.ndarray) -> list[str]:
    """"3 missed, 1 false" per gallery image."""
    return [f"{int(m)} missed, {int(f)} false" for m, f in np.asarray(errors).reshape(-1, 2)]


def worst_box_tooltips(truths: Sequence[np.ndarray], detections: Sequence[np.ndarray],
                       classes: Sequence[str]) -> list[str]:
    """The boxes in words: the true ones, then each detection with its score."""
    tips = []
    for truth, found in zip(truths, detections, strict=True):
        t = true_rows(truth)
        d = np.asarray(found, np.float32).reshape(-1, 6)
        true_text = ", ".join(class_name(r[0], classes) for r in t) or "no boxes"
        found_text = ", ".join(f"{class_name(r[0], classes)} {r[1]:.2f}" for r in d) or "none"
        tips.append(f"True: {true_text}\nDetected: {found_text}\n"
                    "(solid: detections, dashed: true boxes)")
    return tips


def worst_box_title(shown: int, total: int, epoch: int | None) -> str:
    """The sentence over the gallery: which validation images these are."""
    prefix = f"Epoch {epoch}: " if epoch is not None else ""
    if shown <= 0:
        return prefix + "every validation box was found, and nothing else."
    which = (f"the {shown} validation image{'s' if shown != 1 else ''}" if total <= shown
             else f"the {shown} of {total:,} validation images")
    text = (f"{which} with the most missed and false boxes (IoU {MATCH_IOU}, score ≥ 0.25), "
            "worst first; solid: detections, dashed: true boxes")
    return prefix + text if prefix else text[:1].upper() + text[1:]


class _BoxPane(ImagePane):
    """The image scaled to fit (nearest neighbour) with the boxes drawn at screen
    resolution over it, so lines stay thin and tags readable however large it is."""

    MINIMUM = 128
    HINT = 320

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._truth: np.ndarray | None = None
        self._boxes = self._scores = self._labels = None
        self._classes: Sequence[str] = ()

    def set_picture(self, rgb: np.ndarray | None, truth: np.ndarray | None) -> None:
        self._truth = truth
        self._boxes = self._scores = self._labels = None
        self.set_rgb(rgb)

    def set_detections(self, boxes, scores, labels, classes: Sequence[str]) -> None:
        self._boxes, self._scores, self._labels, self._classes = boxes, scores, labels, classes
        self.update()

    def paint_over(self, painter: QPainter, target: QRectF) -> None:
        paint_boxes(painter, target, (self._image.height(), self._image.width()),
                    self._truth, self._boxes, self._scores, self._labels, self._classes)


class DetectionView(ProbeView):
    """The probe image with the predicted boxes (solid, tagged "label score") over its
    true boxes (dashed), a legend of the class colours, and a choice of probe image;
    updated about twice a second during a run."""

    EMPTY = ("The boxes found in a validation image appear here while a detection design "
             "trains.")
    SPIN_TIP = "Which validation image the boxes are shown for"

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._prediction: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
        self.pane = _BoxPane(self)
        self.legend.setToolTip("Class colours; solid boxes are detections (with their "
                               "score), dashed ones the true boxes")
        self._lay_out(self.pane)

    # ----------------------------------------------------------------- API
    def show_prediction(self, boxes: np.ndarray, scores: np.ndarray, labels: np.ndarray,
                        probe_index: int, step: int | None = None) -> None:
        """The network's detections for probe ``probe_index`` (best first)."""
        if not self._select(probe_index):
            return
        boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
        scores = np.asarray(scores, np.float32).reshape(-1)
        labels = np.asarray(labels).reshape(-1).astype(np.int64)
        self._prediction = (boxes, scores, labels)
        self.pane.set_detections(boxes, scores, labels, self._classes)
        words = self._title_words(step)
        truth = self.true_boxes()
        if self._targets is not None:
            found, missed, false = match_counts(truth, boxes, labels)
            words.append(f"{found} of {len(truth)} true boxes found, {false} false")
        else:
            words.append(f"{len(boxes)} box{'es' if len(boxes) != 1 else ''}")
        self.title.setText(" · ".join(words))
        self._update_legend()

    def prediction(self) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
        """(boxes, scores, labels) drawn now; None before the first prediction."""
        return self._prediction

    def true_boxes(self) -> np.ndarray:
        if self._targets is None or self._index >= len(self._targets):
            return np.zeros((0, 5), dtype=np.float32)
        return true_rows(self._targets[self._index])

    def image_rect(self) -> QRect:
        """Where the image is drawn in the pane (pane coordinates)."""
        return self.pane.target()

    def image_size(self) -> tuple[int, int]:
        """The probe image's (height, width) in pixels; (0, 0) without one."""
        if not self.has_probes():
            return 0, 0
        return int(self._images.shape[-2]), int(self._images.shape[-1])

    def legend_entries(self) -> list[tuple[str, str]]:
        return [(name, box_colour_hex(i)) for i, name in enumerate(self._classes)]

    # ----------------------------------------------------------- internals
    def _show_picture(self) -> None:
        self._prediction = None
        self.pane.set_picture(to_rgb8(self._images[self._index][None])[0], self.true_boxes())

    def _clear_picture(self) -> None:
        self._prediction = None
        self.pane.set_picture(None, None)

    def _update_legend(self) -> None:
        """Swatches and names, the classes detected now in bold."""
        present = set() if self._prediction is None else {int(v) for v in self._prediction[2]}
        entries = []
        for i, name in enumerate(self._classes):
            label = f"<b>{escape(name)}</b>" if i in present else escape(name)
            entries.append(f"{swatch(box_colour_hex(i))}&nbsp;{label}")
        if entries:
            entries.append("solid:&nbsp;detected · dashed:&nbsp;true")
        self.legend.setText(LEGEND_GAP.join(entries))
