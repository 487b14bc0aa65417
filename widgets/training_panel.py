"""The training panel: the settings of a run, Start / Pause / Stop, progress and status.

It takes and gives plain dicts with the keys of the graph file's ``training`` object
(engine.train_config.TrainConfig's field names), so it never imports the trainer.

Pause protocol: the Pause button's text follows the state the owner reports, not the
click. A click while running emits ``pause_requested``; once the trainer has paused
the owner calls ``set_running(True, paused=True)`` and the button says "Resume"; the
next click emits ``resume_requested`` and the owner calls ``set_running(True)`` again.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from .gallery import ImageGallery

DATASETS = ("shapes", "digits", "mnist", "fashion-mnist", "cifar10")
OPTIMIZERS = ("sgd", "adam", "adamw")
SCHEDULES = ("constant", "step", "cosine", "onecycle")
DEVICES = ("auto", "cpu", "cuda", "mps")
PRECISIONS = ("auto", "fp32", "bf16", "fp16")
KEYS = ("dataset", "epochs", "batch_size", "lr", "optimizer", "schedule", "device",
        "precision", "crop_padding", "hflip")
CROP_PADDING = 4
PREVIEW_THUMBNAIL = 44


class RateSpinBox(QDoubleSpinBox):
    """A learning rate as people write it (0.003, 3e-07): fixed decimals would show
    1e-7 as 0.000000 and clamp it; steps multiply and divide by ~2 instead of adding."""

    def __init__(self) -> None:
        super().__init__()
        self.setDecimals(12)
        self.setRange(1e-9, 100.0)
        self.setKeyboardTracking(False)

    def textFromValue(self, value: float) -> str:  # noqa: N802 - Qt override
        return f"{value:g}"

    def valueFromText(self, text: str) -> float:  # noqa: N802 - Qt override
        try:
            return float(text.strip())
        except ValueError:
            return self.value()

    def validate(self, text: str, pos: int):
        from PySide6.QtGui import QValidator

        stripped = text.strip()
        try:
            value = float(stripped)
        except ValueError:
            ok = stripped == "" or all(ch in "0123456789.eE+-" for ch in stripped)
            return (QValidator.State.Intermediate if ok else QValidator.State.Invalid), text, pos
        inside = self.minimum() <= value <= self.maximum()
        return (QValidator.State.Acceptable if inside else QValidator.State.Intermediate), \
            text, pos

    def stepBy(self, steps: int) -> None:  # noqa: N802 - Qt override
        self.setValue(self.value() * (2.0 ** steps))


def _combo(values: tuple[str, ...]) -> QComboBox:
    combo = QComboBox()
    combo.setEditable(False)
    for value in values:
        combo.addItem(value, value)
    return combo


def _select(combo: QComboBox, value: str, add: bool = False) -> None:
    """Select the entry whose data is ``value``; add it first if asked, else leave as is."""
    index = combo.findData(value)
    if index < 0 and add:
        combo.addItem(value, value)
        index = combo.count() - 1
    if index >= 0:
        combo.setCurrentIndex(index)


class TrainingPanel(QWidget):
    """Controls of one training run; emits requests, the owner runs the trainer."""

    start_requested = Signal()
    pause_requested = Signal()
    resume_requested = Signal()
    stop_requested = Signal()
    settings_changed = Signal(dict)
    fit_input_requested = Signal()
    download_requested = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("trainingPanel")
        self._quiet = False
        self._running = False
        self._paused = False

        self.dataset = _combo(DATASETS)
        self.browse_button = QPushButton("Folder or .npz…")
        self.browse_button.setToolTip("Train on an image folder (one sub-folder per class) "
                                      "or a .npz file with x and y arrays")
        self.epochs = QSpinBox()
        self.epochs.setRange(1, 1000)
        self.epochs.setValue(5)
        self.batch_size = QSpinBox()
        self.batch_size.setRange(1, 65536)
        self.batch_size.setValue(64)
        self.lr = RateSpinBox()
        self.lr.setValue(1e-3)
        self.optimizer = _combo(OPTIMIZERS)
        _select(self.optimizer, "adam")
        self.schedule = _combo(SCHEDULES)
        self.device = _combo(DEVICES)
        self.precision = _combo(PRECISIONS)
        self.crop = QCheckBox("Random crop")
        self.crop.setToolTip(f"Pad by {CROP_PADDING} pixels and crop back at a random place")
        self.hflip = QCheckBox("Horizontal flip")

        self.start_button = QPushButton("Start")
        self.pause_button = QPushButton("Pause")
        self.stop_button = QPushButton("Stop")
        self.progress = QProgressBar()
        self.progress.setRange(0, 1000)
        self.progress.setValue(0)
        self.progress.setTextVisible(True)
        self.progress.setFormat("")
        self.status = QLabel("")
        self.status.setWordWrap(True)
        self.status.setObjectName("trainingStatus")

        # the dataset at a glance, and what to do when it does not fit the design
        self.dataset_info = QLabel("")
        self.dataset_info.setWordWrap(True)
        self.preview = ImageGallery()
        self.preview.set_thumbnail_size(PREVIEW_THUMBNAIL)
        self.preview.setMaximumHeight(2 * PREVIEW_THUMBNAIL + 90)
        self.fit_label = QLabel("")
        self.fit_label.setWordWrap(True)
        self.fit_button = QPushButton("")
        self.fit_button.clicked.connect(self.fit_input_requested)
        self.download_button = QPushButton("Download")
        self.download_button.clicked.connect(
            lambda: self.download_requested.emit(self.dataset.currentData()))
        offer = QVBoxLayout()
        offer.setContentsMargins(0, 0, 0, 0)
        offer.addWidget(self.fit_label)
        offer.addWidget(self.fit_button)
        offer.addWidget(self.download_button)
        self.offer_box = QWidget()
        self.offer_box.setLayout(offer)
        self.offer_box.setObjectName("fitOffer")
        self.fit_button.hide()
        self.download_button.hide()
        self.offer_box.hide()

        dataset_row = QHBoxLayout()
        dataset_row.setContentsMargins(0, 0, 0, 0)
        dataset_row.addWidget(self.dataset, 1)
        dataset_row.addWidget(self.browse_button)
        augment_row = QHBoxLayout()
        augment_row.setContentsMargins(0, 0, 0, 0)
        augment_row.addWidget(self.crop)
        augment_row.addWidget(self.hflip)
        augment_row.addStretch(1)
        form = QFormLayout()
        form.addRow("Dataset", dataset_row)
        form.addRow("Epochs", self.epochs)
        form.addRow("Batch size", self.batch_size)
        form.addRow("Learning rate", self.lr)
        form.addRow("Optimizer", self.optimizer)
        form.addRow("Schedule", self.schedule)
        form.addRow("Device", self.device)
        form.addRow("Precision", self.precision)
        form.addRow("Augmentation", augment_row)
        buttons = QHBoxLayout()
        buttons.addWidget(self.start_button)
        buttons.addWidget(self.pause_button)
        buttons.addWidget(self.stop_button)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addLayout(buttons)
        layout.addWidget(self.progress)
        layout.addWidget(self.status)
        layout.addWidget(self.offer_box)
        layout.addWidget(self.dataset_info)
        layout.addWidget(self.preview, 1)

        self._inputs: list[QWidget] = [
            self.dataset, self.browse_button, self.epochs, self.batch_size, self.lr,
            self.optimizer, self.schedule, self.device, self.precision, self.crop, self.hflip,
        ]
        for combo in (self.dataset, self.optimizer, self.schedule, self.device, self.precision):
            combo.currentIndexChanged.connect(self._edited)
        for spin in (self.epochs, self.batch_size, self.lr):
            spin.valueChanged.connect(self._edited)
        self.crop.toggled.connect(self._edited)
        self.hflip.toggled.connect(self._edited)
        self.browse_button.clicked.connect(self._browse)
        self.start_button.clicked.connect(self.start_requested)
        self.stop_button.clicked.connect(self.stop_requested)
        self.pause_button.clicked.connect(self._pause_clicked)
        self.set_running(False)

    # settings ---------------------------------------------------------------------------

    def settings(self) -> dict[str, Any]:
        return {
            "dataset": self.dataset.currentData(),
            "epochs": self.epochs.value(),
            "batch_size": self.batch_size.value(),
            "lr": self.lr.value(),
            "optimizer": self.optimizer.currentData(),
            "schedule": self.schedule.currentData(),
            "device": self.device.currentData(),
            "precision": self.precision.currentData(),
            "crop_padding": CROP_PADDING if self.crop.isChecked() else 0,
            "hflip": self.hflip.isChecked(),
        }

    def set_settings(self, d: dict[str, Any]) -> None:
        """Show these settings; unknown keys are ignored, missing ones keep their values."""
        self._quiet = True
        try:
            if isinstance(d.get("dataset"), str) and d["dataset"]:
                _select(self.dataset, d["dataset"], add=True)
            for key, spin in (("epochs", self.epochs), ("batch_size", self.batch_size)):
                if isinstance(d.get(key), int) and not isinstance(d[key], bool):
                    spin.setValue(d[key])
            if isinstance(d.get("lr"), int | float) and not isinstance(d["lr"], bool):
                self.lr.setValue(float(d["lr"]))
            for key, combo in (("optimizer", self.optimizer), ("schedule", self.schedule),
                               ("device", self.device), ("precision", self.precision)):
                if isinstance(d.get(key), str):
                    _select(combo, d[key])
            if "crop_padding" in d:
                self.crop.setChecked(bool(d["crop_padding"]))
            if "hflip" in d:
                self.hflip.setChecked(bool(d["hflip"]))
        finally:
            self._quiet = False

    def set_devices(self, items: list[tuple[str, str]]) -> None:
        """Replace the device entries with (value, label) pairs, keeping the selection."""
        current = self.device.currentData()
        self._quiet = True
        try:
            self.device.clear()
            for value, label in items:
                self.device.addItem(label, value)
            _select(self.device, current)
        finally:
            self._quiet = False
        if self.device.currentData() != current:
            self._edited()

    def _edited(self, *_: object) -> None:
        if not self._quiet:
            self.settings_changed.emit(self.settings())

    def _browse(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Image folder (one sub-folder per class)")
        if not path:
            path, _ = QFileDialog.getOpenFileName(self, "Dataset file", "", "NumPy arrays (*.npz)")
        if path:
            _select(self.dataset, path, add=True)

    # the dataset ----------------------------------------------------------------------

    def show_dataset(self, description: str, images: np.ndarray, captions: Sequence[str]) -> None:
        """A few samples of the chosen dataset, with its size and classes."""
        self.dataset_info.setText(description)
        self.preview.set_images(images, captions)
        self.download_button.hide()
        self._update_offer_box()

    def show_dataset_problem(self, message: str, download: bool = False) -> None:
        """The dataset cannot be previewed; ``download`` offers to fetch it."""
        self.dataset_info.setText("")
        self.preview.show_message(message)
        self.download_button.setVisible(download)
        self.download_button.setEnabled(True)
        self.download_button.setText("Download")
        self._update_offer_box()

    def set_download_progress(self, text: str) -> None:
        self.download_button.setEnabled(False)
        self.download_button.setText(text)

    def offer_fit(self, message: str, button: str) -> None:
        """Say why the design does not fit the dataset, with a button that fixes it."""
        self.fit_label.setText(message)
        self.fit_button.setText(button)
        self.fit_button.setVisible(bool(button))
        self._update_offer_box()

    def clear_fit(self) -> None:
        self.fit_label.setText("")
        self.fit_button.hide()
        self._update_offer_box()

    def _update_offer_box(self) -> None:
        self.offer_box.setVisible(bool(self.fit_label.text()) or not self.fit_button.isHidden()
                                  or not self.download_button.isHidden())

    # run state --------------------------------------------------------------------------

    def set_running(self, running: bool, paused: bool = False) -> None:
        """Settings are read-only while running; Pause says "Resume" while paused."""
        self._running = running
        self._paused = running and paused
        for widget in self._inputs:
            widget.setEnabled(not running)
        self.fit_button.setEnabled(not running)
        self.start_button.setEnabled(not running)
        self.pause_button.setEnabled(running)
        self.stop_button.setEnabled(running)
        self.pause_button.setText("Resume" if self._paused else "Pause")

    def is_running(self) -> bool:
        return self._running

    def is_paused(self) -> bool:
        return self._paused

    def _pause_clicked(self) -> None:
        if not self._running:
            return
        if self._paused:
            self.resume_requested.emit()
        else:
            self.pause_requested.emit()

    def set_progress(self, epoch: int, epochs: int, step: int, steps_per_epoch: int,
                     text: str) -> None:
        """``epoch`` counts from 0 (epochs done), ``step`` steps into it."""
        epochs = max(1, epochs)
        steps = max(1, steps_per_epoch)
        fraction = (epoch + min(max(step, 0), steps) / steps) / epochs
        fraction = min(max(fraction, 0.0), 1.0)
        self.progress.setValue(round(fraction * self.progress.maximum()))
        self.progress.setFormat(text or f"{fraction:.0%}")

    def progress_fraction(self) -> float:
        return self.progress.value() / self.progress.maximum()

    def set_status(self, text: str, error: bool = False) -> None:
        self.status.setText(text)
        self.status.setStyleSheet("color: #d32f2f;" if error else "")
        self.status.setProperty("error", error)
