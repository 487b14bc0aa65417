"""Segmentation results in colour: the class colour table, masks overlaid on images, and
the live probe view (the predicted mask over the probe image beside the true mask).

One colour per class everywhere (the probe view, the worst-IoU gallery, the IoU curves
and the mask PNGs ``convas predict`` writes), so a person who has learnt that "O" is
green never has to look it up again. The table is PASCAL VOC's bit pattern, the one
``engine.predict.palette`` writes into the PNGs; it is computed here again because
widgets must not import the engine's torch side (a test checks that both agree).

Widgets take plain numpy only: class maps are integer [H,W] arrays of class indexes,
255 meaning "ignore" (not labelled) in a true mask.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtGui import QImage
from PySide6.QtWidgets import QHBoxLayout, QLabel, QVBoxLayout, QWidget

from .gallery import to_rgb8
from .probe_view import LEGEND_GAP, ImagePane, ProbeView, escape, nbsp, swatch

IGNORE = 255                 # a true-mask pixel nobody labelled
OVERLAY_ALPHA = 0.6          # the class colour's share of an overlaid pixel
BACKGROUND = 0               # class 0 is left uncoloured in overlays: the image shows


def class_colours(count: int = 256) -> np.ndarray:
    """[count, 3] uint8 RGB, a distinct colour per class index: class 0 black, then dark
    red, green, olive, blue, ... (VOC's bit pattern, as in the mask PNGs). Index 255 is
    the colour VOC gives its unlabelled pixels, light cream, shown for "ignore"."""
    table = np.zeros((count, 3), dtype=np.uint8)
    for k in range(count):
        rgb, c = [0, 0, 0], k
        for shift in range(7, -1, -1):
            for channel in range(3):
                rgb[channel] |= ((c >> channel) & 1) << shift
            c >>= 3
        table[k] = rgb
    return table


_TABLE = class_colours(256)
IGNORE_COLOUR: tuple[int, int, int] = tuple(int(v) for v in _TABLE[IGNORE])


def colour_of(index: int) -> tuple[int, int, int]:
    """One class's colour as an (r, g, b) tuple."""
    return tuple(int(v) for v in _TABLE[int(index) % 256])


def colour_hex(index: int) -> str:
    r, g, b = colour_of(index)
    return f"#{r:02x}{g:02x}{b:02x}"


def _class_map(mask: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """``mask`` as an int array of the image's [H,W]; another size is resized with
    nearest neighbour (as the data loader resizes masks), so every pixel keeps a class."""
    m = np.asarray(mask)
    if m.ndim != 2:
        raise ValueError(f"a class map must be [H, W], got shape {m.shape}")
    m = m.astype(np.int64)
    if m.shape != shape:
        rows = (np.arange(shape[0]) * m.shape[0]) // shape[0]
        cols = (np.arange(shape[1]) * m.shape[1]) // shape[1]
        m = m[rows][:, cols]
    return np.where((m >= 0) & (m <= 255), m, IGNORE)


def colour_mask(mask: np.ndarray) -> np.ndarray:
    """A class map [H,W] as its colours, [H,W,3] uint8 (255 ignore pixels light cream)."""
    m = np.asarray(mask)
    return _TABLE[_class_map(m, m.shape[:2])]


def overlay(image: np.ndarray, mask: np.ndarray, alpha: float = OVERLAY_ALPHA) -> np.ndarray:
    """``image`` ([C,H,W] as stored: uint8, or floats 0..1) with ``mask``'s classes
    blended over it, [H,W,3] uint8. Background (class 0) and ignore pixels stay the
    image, so the glyphs the network found stand out on the picture it was given."""
    rgb = to_rgb8(np.asarray(image)[None])[0]
    m = _class_map(mask, rgb.shape[:2])
    coloured = (m != BACKGROUND) & (m != IGNORE)
    out = rgb.astype(np.float32)
    out[coloured] = (1 - alpha) * out[coloured] + alpha * _TABLE[m[coloured]]
    return np.rint(out).astype(np.uint8)


def overlay_batch(images: np.ndarray, masks: np.ndarray,
                  alpha: float = OVERLAY_ALPHA) -> np.ndarray:
    """``overlay`` for [N,C,H,W] images and [N,H,W] masks, as [N,3,H,W] uint8 (the
    layout ImageGallery.set_images takes)."""
    if len(images) != len(masks):
        raise ValueError(f"{len(masks)} masks for {len(images)} images")
    out = [overlay(i, m, alpha).transpose(2, 0, 1) for i, m in zip(images, masks, strict=True)]
    return np.stack(out) if out else np.zeros((0, 3, 1, 1), dtype=np.uint8)


def classes_present(mask: np.ndarray, classes: Sequence[str]) -> list[str]:
    """The names of the classes ``mask`` holds, in class order (ignore pixels left out)."""
    values = np.unique(np.asarray(mask))
    return [_name(int(v), classes) for v in values if int(v) != IGNORE]


def _name(index: int, classes: Sequence[str]) -> str:
    return str(classes[index]) if 0 <= index < len(classes) else f"class {index}"


def worst_iou_captions(iou: Sequence[float]) -> list[str]:
    """One short line per image, "IoU 0.42", under a gallery thumbnail."""
    return [f"IoU {float(v):.2f}" if np.isfinite(v) else "IoU —" for v in iou]


def worst_iou_tooltips(true: np.ndarray, predicted: np.ndarray, iou: Sequence[float],
                       classes: Sequence[str]) -> list[str]:
    """What the thumbnail cannot say: the classes there are and the classes predicted."""
    tips = []
    for t, p, v in zip(true, predicted, iou, strict=True):
        value = f"{float(v):.3f}" if np.isfinite(v) else "—"
        tips.append(f"IoU {value} (this image's mean over its classes)\n"
                    f"True: {', '.join(classes_present(t, classes)) or 'nothing labelled'}\n"
                    f"Predicted: {', '.join(classes_present(p, classes))}")
    return tips


def worst_iou_title(shown: int, total: int, epoch: int | None) -> str:
    """The sentence over the worst-IoU gallery: which images these are and how many."""
    prefix = f"Epoch {epoch}: " if epoch is not None else ""
    if shown <= 0:
        return prefix + "no validation images to show."
    if shown == 1:
        which = "the validation image" if total <= 1 else f"the one of {total:,} validation images"
    else:
        which = (f"the {shown} validation images" if total <= shown else
                 f"the {shown} of {total:,} validation images")
    text = (f"{which} with the lowest IoU, worst first (predicted mask overlaid; hover for "
            "the classes)")
    return prefix + text if prefix else text[:1].upper() + text[1:]


class SegmentationView(ProbeView):
    """The probe image with the predicted mask overlaid, beside its true mask, with a
    legend of the class colours; updated about twice a second during a run."""

    EMPTY = ("The predicted mask of a validation image appears here while a segmentation "
             "design trains.")

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._predicted: np.ndarray | None = None
        self.predicted_pane, self.true_pane = ImagePane(self), ImagePane(self)
        self.predicted_caption = QLabel("prediction (overlaid on the image)")
        self.true_caption = QLabel("true mask")
        panes = QHBoxLayout()
        for caption, pane in ((self.predicted_caption, self.predicted_pane),
                              (self.true_caption, self.true_pane)):
            column = QVBoxLayout()
            caption.setAlignment(Qt.AlignmentFlag.AlignHCenter)
            column.addWidget(caption)
            column.addWidget(pane, 1)
            panes.addLayout(column, 1)
        self._lay_out(panes)

    # ----------------------------------------------------------------- API
    def show_prediction(self, class_map: np.ndarray, probe_index: int, step: int | None = None,
                        confidence: np.ndarray | None = None) -> None:
        """The network's class map [H,W] for probe ``probe_index``, overlaid on it."""
        if not self._select(probe_index):
            return
        image = self._images[self._index]
        self._predicted = np.asarray(class_map)
        self.predicted_pane.set_rgb(overlay(image, self._predicted))
        words = self._title_words(step)
        target = self.true_mask()
        if target is not None:
            m = _class_map(self._predicted, target.shape)
            labelled = target != IGNORE
            if labelled.any():
                right = float(np.mean(m[labelled] == target[labelled]))
                words.append(f"{100 * right:.1f}% of its pixels right")
        if confidence is not None and np.size(confidence):
            words.append(f"mean confidence {100 * float(np.nanmean(confidence)):.0f}%")
        self.title.setText(" · ".join(words))
        self._update_legend()

    def predicted_mask(self) -> np.ndarray | None:
        """The class map shown overlaid now (None before the first prediction)."""
        return self._predicted

    def true_mask(self) -> np.ndarray | None:
        if self._targets is None or self._index >= len(self._targets):
            return None
        return np.asarray(self._targets[self._index]).astype(np.int64)

    def overlay_image(self) -> QImage:
        """The overlaid probe image as composed (one pixel per image pixel)."""
        return self.predicted_pane.image()

    def true_image(self) -> QImage:
        return self.true_pane.image()

    def legend_entries(self) -> list[tuple[str, str]]:
        """(class name, colour as #rrggbb) in class order, as the legend shows them."""
        return [(name, colour_hex(i)) for i, name in enumerate(self._classes)]

    # ----------------------------------------------------------- internals
    def _show_picture(self) -> None:
        self._predicted = None
        self.predicted_pane.set_rgb(to_rgb8(self._images[self._index][None])[0])
        target = self.true_mask()
        self.true_pane.set_rgb(None if target is None else colour_mask(target))

    def _clear_picture(self) -> None:
        self._predicted = None
        self.predicted_pane.set_rgb(None)
        self.true_pane.set_rgb(None)

    def _update_legend(self) -> None:
        """Swatches and names; the classes in the prediction shown bold, and the
        ignore colour listed only when the true mask has unlabelled pixels."""
        present = set() if self._predicted is None else {int(v) for v in
                                                         np.unique(self._predicted)}
        entries = []
        for i, name in enumerate(self._classes):
            label = f"<b>{escape(name)}</b>" if i in present else escape(name)
            note = " (left uncoloured)" if i == BACKGROUND else ""
            entries.append(swatch(colour_hex(i)) + nbsp(" " + label + note))
        target = self.true_mask()
        if target is not None and np.any(target == IGNORE):
            entries.append(swatch(colour_hex(IGNORE)) + nbsp(" not labelled"))
        self.legend.setText(LEGEND_GAP.join(entries))
        self.legend.setToolTip("Class colours, as in the masks convas predict writes; "
                               "bold: classes in the current prediction")
