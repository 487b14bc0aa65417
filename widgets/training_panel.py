"""The training panel: the settings of a run, Start / Pause / Stop, progress and status.

Its settings rows are generated from TrainConfig's own description of its fields
(engine.train_config.panel_settings: label, doc, choices, default, range), as the
inspector is generated from ParamSpec, so the panel declares no choice, default or
range of its own. It takes plain dicts with the keys of the graph file's ``training``
object and, for every edit, emits the changed key only; it never imports the trainer.

Pause protocol: the Pause button's text follows the state the owner reports, not the
click. A click while running emits ``pause_requested``; once the trainer has paused
the owner calls ``set_running(True, paused=True)`` and the button says "Resume"; the
next click emits ``resume_requested`` and the owner calls ``set_running(True)`` again.

Controls never jump under the cursor: everything whose height changes with what it
says (the status, the fit offer, the dataset preview) lives below the buttons in a
scroll area of its own, so a message appearing or going neither moves Start nor grows
the panel (and with it the dock around it).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QFrame,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from engine.train_config import Setting, device_choice, panel_settings, setting, split_device_choice

from .gallery import ImageGallery

KEYS = tuple(s.name for s in panel_settings())
PREVIEW_THUMBNAIL = 44
FLOAT_DECIMALS = 6  # a plain (not log-scale) number setting
INT_LIMIT = 2**31 - 1  # what a spin box holds when a setting has no bound on a side
FLOAT_LIMIT = 1e12


class RateSpinBox(QDoubleSpinBox):
    """A learning rate as people write it (0.003, 3e-07): fixed decimals would show
    1e-7 as 0.000000 and clamp it; steps multiply and divide by ~2 instead of adding."""

    def __init__(self, minimum: float, maximum: float) -> None:
        super().__init__()
        self.setDecimals(12)
        self.setRange(minimum, maximum)
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


def _select(combo: QComboBox, value: str, add: bool = False) -> None:
    """Select the entry whose data is ``value``; add it first if asked, else leave as is."""
    index = combo.findData(value)
    if index < 0 and add:
        combo.addItem(value, value)
        index = combo.count() - 1
    if index >= 0:
        combo.setCurrentIndex(index)


def _is_number(value: Any, kind: str) -> bool:
    allowed = int if kind == "int" else int | float
    return isinstance(value, allowed) and not isinstance(value, bool)


def _bound(value: float | None, otherwise: float) -> float:
    return otherwise if value is None else value


def make_editor(s: Setting) -> QWidget:
    """The control for one setting, showing its default: a combo for choices and names,
    a check box for switches, a spin box for numbers (a rate box for log-scale ones)."""
    widget: QWidget
    if s.kind in ("choice", "text"):
        widget = QComboBox()
        widget.setEditable(False)
        for value in s.choices:
            widget.addItem(value, value)
        _select(widget, s.default, add=True)
    elif s.kind == "bool" or s.switch is not None:
        widget = QCheckBox(s.label if s.group else "")
        widget.setChecked(bool(s.default))
    elif s.kind == "int":
        widget = QSpinBox()
        widget.setRange(int(_bound(s.minimum, -INT_LIMIT)), int(_bound(s.maximum, INT_LIMIT)))
        widget.setValue(s.default)
    elif s.kind == "float":
        low, high = _bound(s.minimum, -FLOAT_LIMIT), _bound(s.maximum, FLOAT_LIMIT)
        if s.log_scale:
            widget = RateSpinBox(low, high)
        else:
            widget = QDoubleSpinBox()
            widget.setDecimals(FLOAT_DECIMALS)
            widget.setRange(low, high)
        widget.setValue(s.default)
    else:
        raise ValueError(f"the Training panel has no control for the {s.kind} setting {s.name}")
    widget.setToolTip(s.doc + (f". Ticked: {s.switch}." if s.switch is not None else ""))
    return widget


class TrainingPanel(QWidget):
    """Controls of one training run; emits requests, the owner runs the trainer.

    ``editors`` maps each shown setting to its control; the control is also an
    attribute named after the setting (``panel.epochs``).
    """

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
        self.settings_shown: tuple[Setting, ...] = panel_settings()
        self.editors: dict[str, QWidget] = {}
        self.browse_buttons: dict[str, QPushButton] = {}
        form = self._build_form()
        self._add_init_row(form)

        self.start_button = QPushButton("Start")
        self.pause_button = QPushButton("Pause")
        self.stop_button = QPushButton("Stop")
        self.progress = QProgressBar()
        self.progress.setRange(0, 1000)
        self.progress.setValue(0)
        self.progress.setTextVisible(True)
        self.progress.setFormat("")
        buttons = QHBoxLayout()
        buttons.addWidget(self.start_button)
        buttons.addWidget(self.pause_button)
        buttons.addWidget(self.stop_button)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addLayout(buttons)
        layout.addWidget(self.progress)
        layout.addWidget(self._build_info_area(), 1)

        self._inputs: list[QWidget] = [*self.editors.values(), *self.browse_buttons.values(),
                                       self.init_path, self.init_browse, self.init_clear]
        self.start_button.clicked.connect(self.start_requested)
        self.stop_button.clicked.connect(self.stop_requested)
        self.pause_button.clicked.connect(self._pause_clicked)
        self.set_running(False)

    def _build_form(self) -> QFormLayout:
        """One row per shown setting (one shared row per group), in TrainConfig's order."""
        form = QFormLayout()
        groups: dict[str, QHBoxLayout] = {}
        for s in self.settings_shown:
            if hasattr(self, s.name):
                raise ValueError(f"the setting {s.name} would hide TrainingPanel.{s.name}")
            editor = make_editor(s)
            self.editors[s.name] = editor
            setattr(self, s.name, editor)
            self._connect(s, editor)
            if s.group in groups:  # next to the group's others, before the row's stretch
                groups[s.group].insertWidget(groups[s.group].count() - 1, editor)
                continue
            row = QHBoxLayout()
            row.setContentsMargins(0, 0, 0, 0)
            if s.group:
                row.addWidget(editor)
                row.addStretch(1)
                groups[s.group] = row
            else:
                row.addWidget(editor, 1)
                if s.paths:
                    row.addWidget(self._browse_button(s))
            form.addRow(s.group or s.label, row)
        return form

    def _add_init_row(self, form: QFormLayout) -> None:
        """Start from weights (TrainConfig.init, SPEC §8): a checkpoint to fine-tune
        from, typed or browsed for, cleared with ×. Not one of ``editors``: it is a path
        the user picks, not a choice among values."""
        s = setting("init")
        self.init_path = QLineEdit()
        self.init_path.setObjectName("initPath")
        self.init_path.setPlaceholderText("none: every block starts fresh")
        self.init_path.setToolTip(s.doc)
        self.init_path.editingFinished.connect(self._init_edited)
        self.init_browse = QPushButton("Browse…")
        self.init_browse.setToolTip("Choose a checkpoint (.pt): a run's model.pt, or the "
                                    "weights of an imported model")
        self.init_browse.clicked.connect(self.browse_init)
        self.init_clear = QPushButton("×")
        self.init_clear.setToolTip("Start every block fresh")
        self.init_clear.setFixedWidth(self.init_clear.fontMetrics().horizontalAdvance("×") + 16)
        self.init_clear.clicked.connect(lambda: self.set_init("", emit=True))
        self._init_value = ""
        row = QHBoxLayout()
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.init_path, 1)
        row.addWidget(self.init_browse)
        row.addWidget(self.init_clear)
        form.addRow(s.label, row)

    def set_init(self, path: str, emit: bool = False) -> None:
        """Show the checkpoint to start from ("" for none); ``emit``: a person chose it."""
        self.init_path.setText(path)
        self.init_clear.setVisible(bool(path))
        changed = path != self._init_value
        self._init_value = path
        if emit and changed and not self._quiet:
            self.settings_changed.emit({"init": path})

    def _init_edited(self) -> None:
        self.set_init(self.init_path.text().strip(), emit=True)

    def browse_init(self) -> None:
        start = str(Path(self._init_value).parent) if self._init_value else ""
        path, _ = QFileDialog.getOpenFileName(self, setting("init").label, start,
                                              "Checkpoints (*.pt);;All files (*)")
        if path:
            self.set_init(path, emit=True)

    def _browse_button(self, s: Setting) -> QPushButton:
        button = QPushButton("Folder or " + " or ".join(s.paths) + "…")
        button.setToolTip(s.doc)
        button.clicked.connect(functools.partial(self._browse, s))
        self.browse_buttons[s.name] = button
        return button

    @property
    def browse_button(self) -> QPushButton:
        """The dataset's "Folder or .npz…" button (the one setting that takes paths)."""
        return next(iter(self.browse_buttons.values()))

    def _build_info_area(self) -> QScrollArea:
        """Status, fit offer and dataset preview: below the buttons, scrolled when the
        dock is short, and never widening or lengthening the panel (see the docstring)."""
        self.status = QLabel("")
        self.status.setWordWrap(True)
        self.status.setObjectName("trainingStatus")
        self.dataset_info = QLabel("")
        self.dataset_info.setWordWrap(True)
        self.preview = ImageGallery()
        self.preview.set_thumbnail_size(PREVIEW_THUMBNAIL)
        self.preview.setMaximumHeight(2 * PREVIEW_THUMBNAIL + 90)
        # what to do when the dataset does not fit the design
        self.fit_label = QLabel("")
        self.fit_label.setWordWrap(True)
        self.fit_button = QPushButton("")
        self.fit_button.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Fixed)
        self.fit_button.clicked.connect(self.fit_input_requested)
        self.download_button = QPushButton("Download")
        self.download_button.clicked.connect(
            lambda: self.download_requested.emit(self.editors["dataset"].currentData()))
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

        inside = QWidget()
        column = QVBoxLayout(inside)
        column.setContentsMargins(0, 0, 0, 0)
        column.addWidget(self.status)
        column.addWidget(self.offer_box)
        column.addWidget(self.dataset_info)
        column.addWidget(self.preview, 1)
        column.addStretch(0)
        self.info_area = QScrollArea()
        self.info_area.setObjectName("trainingInfo")
        self.info_area.setWidget(inside)
        self.info_area.setWidgetResizable(True)
        self.info_area.setFrameShape(QFrame.Shape.NoFrame)
        self.info_area.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        # its width follows the settings above, never the length of a message; its
        # least height, whatever it says, shows a status line and a two-line fit offer
        self.info_area.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Expanding)
        self.info_area.setMinimumHeight(3 * self.fontMetrics().lineSpacing()
                                        + self.fit_button.sizeHint().height()
                                        + 3 * column.spacing())
        return self.info_area

    def _connect(self, s: Setting, editor: QWidget) -> None:
        edited = functools.partial(self._edited, s.name)
        if isinstance(editor, QComboBox):
            editor.currentIndexChanged.connect(edited)
        elif isinstance(editor, QCheckBox):
            editor.toggled.connect(edited)
        else:
            editor.valueChanged.connect(edited)

    # settings ---------------------------------------------------------------------------

    def settings(self) -> dict[str, Any]:
        """Every shown setting's value, keyed as in the ``training`` object, and ``nproc``
        when the device entry trains on several processes (the device menu offers them:
        one control for where and on how many processes, the file keeps them apart)."""
        values = {s.name: self._value(s) for s in self.settings_shown}
        nproc = self._nproc() if "device" in self.editors else 1
        if nproc != 1:
            values["nproc"] = nproc
        return values

    def _nproc(self) -> int:
        return split_device_choice(self.editors["device"].currentData() or "")[1]

    def _value(self, s: Setting) -> Any:
        editor = self.editors[s.name]
        if s.name == "device":
            return split_device_choice(editor.currentData() or s.default)[0]
        if isinstance(editor, QComboBox):
            return editor.currentData()
        if isinstance(editor, QCheckBox):
            if s.switch is not None:
                return s.switch if editor.isChecked() else s.default
            return editor.isChecked()
        return editor.value()

    def set_settings(self, d: dict[str, Any]) -> None:
        """Show these settings; unknown keys are ignored, missing ones keep their values,
        and so do values of the wrong type."""
        self._quiet = True
        try:
            for s in self.settings_shown:
                if s.name == "device" and ("device" in d or "nproc" in d):
                    self._show_device(s, d)
                elif s.name in d:
                    self._show(s, d[s.name])
            if "init" in d:
                self.set_init(d["init"] if isinstance(d["init"], str) else "")
        finally:
            self._quiet = False

    def _show_device(self, s: Setting, d: dict[str, Any]) -> None:
        """The device menu's entry for ``device`` on ``nproc`` processes (added when the
        menu lacks it, e.g. 3 processes from a file)."""
        device = d.get("device", self._value(s))
        nproc = d.get("nproc", 1)
        if not isinstance(device, str) or not device:
            return
        if not isinstance(nproc, int) or isinstance(nproc, bool) or nproc < 0:
            nproc = 1
        _select(self.editors[s.name], device_choice(device, nproc), add=nproc != 1)

    def _show(self, s: Setting, value: Any) -> None:
        editor = self.editors[s.name]
        if isinstance(editor, QComboBox):
            if isinstance(value, str) and value:
                _select(editor, value, add=bool(s.paths))
        elif isinstance(editor, QCheckBox):
            editor.setChecked(bool(value))
        elif _is_number(value, s.kind):
            editor.setValue(value)

    def set_devices(self, items: list[tuple[str, str]]) -> None:
        """Replace the device entries with (value, label) pairs, keeping the selection."""
        device = self.editors["device"]
        current = device.currentData()
        self._quiet = True
        try:
            device.clear()
            for value, label in items:
                device.addItem(label, value)
            _select(device, current)
        finally:
            self._quiet = False
        if device.currentData() != current:
            self._edited("device")

    def _edited(self, name: str, *_: object) -> None:
        """A person changed one setting: say which, and its new value."""
        if not self._quiet:
            described = next(s for s in self.settings_shown if s.name == name)
            change = {name: self._value(described)}
            if name == "device":  # the entry also says how many processes
                change["nproc"] = self._nproc()
            self.settings_changed.emit(change)

    def _browse(self, s: Setting) -> None:
        path = QFileDialog.getExistingDirectory(self, f"{s.label}: a folder")
        if not path:
            patterns = " ".join(f"*{suffix}" for suffix in s.paths)
            path, _ = QFileDialog.getOpenFileName(self, f"{s.label}: a file", "",
                                                  f"{s.label} files ({patterns})")
        if path:
            _select(self.editors[s.name], path, add=True)

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
        self.fit_button.setToolTip(button)  # in full, should a narrow panel clip it
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
