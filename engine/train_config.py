"""Training settings: what the trainer needs, saved in the graph file's ``training`` key.

Every setting has a default, so an empty ``training`` object trains something sensible;
unknown keys in the file are left alone (the application may store its own there).

Each field also describes itself for people (label, one-line doc, choices, range) in
its dataclass metadata; :func:`settings` reads that as :class:`Setting` records. The
Training panel builds its controls from them and :meth:`TrainConfig.validate` checks
values against them, so a choice, a default or a range is written once, here, as a
block's parameters are written once in its ``ParamSpec``.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

# The named datasets (engine.data's BUILTIN + DOWNLOADABLE, which import torch).
DATASETS = ("shapes", "digits", "shapes-seg", "shapes-det", "mnist", "fashion-mnist",
            "cifar10")
OPTIMIZERS = ("sgd", "adam", "adamw")
SCHEDULES = ("constant", "step", "cosine", "onecycle")
DEVICES = ("auto", "cpu", "cuda", "mps")
PRECISIONS = ("auto", "fp32", "bf16", "fp16")


class ConfigError(ValueError):
    """A training setting that cannot work; the message names the setting and the fix."""


@dataclass(frozen=True)
class Setting:
    """One training setting as people see it: what the panel shows and validate checks.

    ``kind`` comes from the field's type: ``int``, ``float``, ``bool``, ``choice`` (a
    str with ``choices``), ``text`` (a str; ``choices`` are then named values offered
    first, ``paths`` the file suffixes it also takes besides folders), ``list`` or
    ``dict``; a ``text`` setting whose default is ``""`` may be left empty ("none").
    ``nullable``: ``None`` is allowed (it means "decide for me").
    ``panel``: shown in the Training panel, in field order; settings with the same
    ``group`` share one row. ``switch``: the panel shows an on/off box that sets this
    value when on and the default when off. ``log_scale``: spans decades, so stepping
    multiplies (a learning rate).
    """

    name: str
    kind: str
    default: Any
    label: str
    doc: str
    choices: tuple[str, ...] = ()
    minimum: float | None = None
    maximum: float | None = None
    below_maximum: bool = False         # the maximum itself is excluded: [minimum, maximum)
    nullable: bool = False
    paths: tuple[str, ...] = ()
    panel: bool = False
    group: str = ""
    switch: Any = None
    log_scale: bool = False

    def expected(self) -> str:
        """The allowed values in words, for messages and tooltips."""
        if self.kind == "choice":
            return "one of " + ", ".join(self.choices)
        if self.kind in ("int", "float"):
            what = "a whole number" if self.kind == "int" else "a number"
            low, high = self.minimum, self.maximum
            if low is not None and high is not None:
                close = ")" if self.below_maximum else "]"
                what += f" in [{_fmt(low)}, {_fmt(high)}{close}"
            elif low is not None:
                what += f" ≥ {_fmt(low)}"
        else:
            text = ("a name or a path" if self.choices else "a path") if self.paths else "a name"
            what = {"bool": "true or false", "list": "a list of names", "dict": "an object",
                    "text": text + (" or empty" if self.default == "" else "")}[self.kind]
        return what + (" or null" if self.nullable else "")

    def problem(self, value: Any) -> str | None:
        """Why ``value`` cannot be this setting's value, or None when it can."""
        if value is None and self.nullable:
            return None
        if self.kind == "choice":
            return None if value in self.choices else f"is not {self.expected()}"
        ok = {
            "bool": lambda v: isinstance(v, bool),
            "int": lambda v: isinstance(v, int) and not isinstance(v, bool),
            "float": lambda v: isinstance(v, int | float) and not isinstance(v, bool)
            and math.isfinite(v),
            "text": lambda v: isinstance(v, str) and (v.strip() != "" or v == self.default),
            "list": lambda v: isinstance(v, list | tuple) and all(isinstance(x, str) for x in v),
            "dict": lambda v: isinstance(v, Mapping),
        }[self.kind](value)
        if ok and self.kind in ("int", "float"):
            high = self.maximum
            ok = ((self.minimum is None or value >= self.minimum)
                  and (high is None or (value < high if self.below_maximum else value <= high)))
        return None if ok else f"must be {self.expected()}"

    def said(self) -> str:
        """How messages name the setting: its label, with the file's key when they differ."""
        words = self.label.lower()
        return words if words == self.name.replace("_", " ") else f"{words} ({self.name})"


def _fmt(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else f"{x:g}"


def _describe(default: Any = dataclasses.MISSING, *, label: str, doc: str,
              factory: Any = dataclasses.MISSING, **more: Any) -> Any:
    """A dataclass field with its description (see :class:`Setting`) as metadata."""
    meta = {"label": label, "doc": doc, **more}
    if factory is not dataclasses.MISSING:
        return field(default_factory=factory, metadata=meta)
    return field(default=default, metadata=meta)


@dataclass
class TrainConfig:
    dataset: str = _describe(
        "shapes", label="Dataset", choices=DATASETS, paths=(".npz",), panel=True,
        doc="A built-in set (shapes, digits, shapes-seg, shapes-det), one Convas downloads "
            "(mnist, fashion-mnist, cifar10), an image folder (one sub-folder per class, "
            "images/ and masks/ for segmentation, or images/ and labels/ in the YOLO layout "
            "for detection), or a .npz file with x and y arrays")
    classes: list[str] | None = _describe(
        None, label="Classes", doc="Train on these classes of the dataset only (all if null)")
    limit: int | None = _describe(
        None, label="Image limit", minimum=1,
        doc="Use at most this many training images (all if null)")
    val_fraction: float = _describe(
        0.2, label="Validation fraction", minimum=0, maximum=1, below_maximum=True,
        doc="The share of the images held out to measure accuracy on")
    dataset_options: dict[str, Any] = _describe(
        label="Dataset options", factory=dict,
        doc="Options of the dataset itself (shapes: count, size; a folder: image size)")
    epochs: int = _describe(
        5, label="Epochs", minimum=1, maximum=10_000, panel=True,
        doc="How many times the run goes through the training images")
    batch_size: int = _describe(
        64, label="Batch size", minimum=1, maximum=65_536, panel=True,
        doc="Images per optimizer step; halve it when the GPU runs out of memory")
    lr: float = _describe(
        1e-3, label="Learning rate", minimum=1e-9, log_scale=True, panel=True,
        doc="Step size of the optimizer, e.g. 0.001 for adam, 0.01 to 0.1 for sgd "
            "(the arrows halve and double it)")
    optimizer: str = _describe(
        "adam", label="Optimizer", choices=OPTIMIZERS, panel=True,
        doc="sgd (with momentum) or adam / adamw (adapt the step per weight)")
    momentum: float = _describe(0.9, label="Momentum", minimum=0, doc="sgd's momentum")
    nesterov: bool = _describe(
        False, label="Nesterov", doc="Nesterov momentum (sgd with momentum > 0 only)")
    weight_decay: float = _describe(
        0.0, label="Weight decay", minimum=0, doc="L2 penalty (adamw: decoupled decay)")
    schedule: str = _describe(
        "constant", label="Schedule", choices=SCHEDULES, panel=True,
        doc="How the learning rate changes over the run: constant, step (times gamma "
            "every step_size epochs), cosine (down to 0) or onecycle (up, then down)")
    step_size: int = _describe(
        10, label="Step size", minimum=1, doc="Epochs between decays (schedule step)")
    gamma: float = _describe(
        0.1, label="Gamma", minimum=0, doc="Learning rate factor at each decay (schedule step)")
    label_smoothing: float = _describe(
        0.0, label="Label smoothing", minimum=0, maximum=1, below_maximum=True,
        doc="Share of the target spread over the other classes")
    seed: int = _describe(
        0, label="Seed", minimum=0, doc="Seed of the split, the shuffling and the weights")
    device: str = _describe(
        "auto", label="Device", choices=DEVICES, panel=True,
        doc="Where the run trains; auto takes a GPU when there is one")
    precision: str = _describe(
        "auto", label="Precision", choices=PRECISIONS, panel=True,
        doc="Number format of the forward pass; auto: bf16 (or fp16) on CUDA, fp32 elsewhere")
    crop_padding: int = _describe(
        0, label="Random crop", minimum=0, switch=4, panel=True,
        group="Augmentation",
        doc="Pad each training image by this many pixels and crop it back at a random "
            "place (0: off)")
    hflip: bool = _describe(
        False, label="Horizontal flip", panel=True, group="Augmentation",
        doc="Flip training images left to right at random")
    channels_last: bool | None = _describe(
        None, label="Channels last", doc="NHWC memory layout (null: on for CUDA and CPU)")
    compile: bool = _describe(
        False, label="Compile", doc="torch.compile the model (worth it on CUDA mostly)")
    sync_bn: bool = _describe(
        False, label="Sync BatchNorm",
        doc="On several GPU processes (SPEC §10), BatchNorm's statistics over the global "
            "batch instead of each process's share (SyncBatchNorm; needs CUDA)")
    nproc: int = _describe(
        1, label="Processes", minimum=0,
        doc="How many processes train together (SPEC §10): 1, N processes of this machine "
            "(gloo on the CPU), or 0 for one per visible GPU (NCCL); the batch size is the "
            "global batch. The Training panel offers them with the device")
    probe_every: int = _describe(
        0, label="Probe every", minimum=0, doc="Steps between feature-map probes (0: never)")
    probe_seconds: float = _describe(
        0.0, label="Probe seconds", minimum=0,
        doc="Or seconds between feature-map probes (0: not by time)")
    init: str = _describe(
        "", label="Start from weights", paths=(".pt",),
        doc="A checkpoint (model.pt) to start from: every node whose id and tensor shapes "
            "match takes its weights, the others start fresh (empty: all start fresh; "
            "ignored when resuming a run)")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None, **overrides: Any) -> TrainConfig:
        """Settings from a graph's ``training`` dict; keys Convas does not know are skipped."""
        known = {f.name for f in dataclasses.fields(cls)}
        values = {k: v for k, v in (data or {}).items() if k in known}
        values.update({k: v for k, v in overrides.items() if v is not None})
        config = cls(**values)
        config.validate()
        return config

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def validate(self) -> None:
        """Each value against its description, then the rules that tie settings together."""
        for s in settings():
            value = getattr(self, s.name)
            problem = s.problem(value)
            if problem is not None:
                raise ConfigError(f"{s.said()} {value!r} {problem}")
        if self.nesterov and not (self.optimizer == "sgd" and self.momentum > 0):
            raise ConfigError("nesterov needs the sgd optimizer with momentum > 0")


def device_choice(device: str, nproc: int = 1) -> str:
    """One value for a device menu entry that also says how many processes train:
    ``cpu`` alone, ``cpu*2`` for two CPU processes, ``cuda*gpu`` for one per GPU, so the
    menu stays one control while the file keeps ``device`` and ``nproc`` apart."""
    if nproc == 1:
        return device
    return f"{device}*{nproc if nproc > 1 else 'gpu'}"


def split_device_choice(value: str) -> tuple[str, int]:
    """``(device, nproc)`` out of a :func:`device_choice` value."""
    device, _, count = value.partition("*")
    if not count:
        return device, 1
    return device, 0 if count == "gpu" else int(count)


_KINDS = {bool: "bool", int: "int", float: "float", str: "text", list: "list", dict: "dict"}


@functools.cache
def settings() -> tuple[Setting, ...]:
    """Every TrainConfig field's description, in field order (the panel's order)."""
    hints = typing.get_type_hints(TrainConfig)
    out = []
    for f in dataclasses.fields(TrainConfig):
        hint, nullable = hints[f.name], False
        if isinstance(hint, types.UnionType):
            parts = [a for a in typing.get_args(hint) if a is not type(None)]
            hint, nullable = parts[0], True
        kind = _KINDS[typing.get_origin(hint) or hint]
        meta = dict(f.metadata)
        if kind == "text" and meta.get("choices") and not meta.get("paths"):
            kind = "choice"
        default = f.default_factory() if f.default is dataclasses.MISSING else f.default
        out.append(Setting(name=f.name, kind=kind, default=default, nullable=nullable, **meta))
    return tuple(out)


def setting(name: str) -> Setting:
    """The description of one field; KeyError for a name TrainConfig does not have."""
    for s in settings():
        if s.name == name:
            return s
    raise KeyError(name)


def panel_settings() -> tuple[Setting, ...]:
    """The settings the Training panel shows, in its order."""
    return tuple(s for s in settings() if s.panel)
