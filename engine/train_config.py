"""Training settings: what the trainer needs, saved in the graph file's ``training`` key.

Every setting has a default, so an empty ``training`` object trains something sensible;
unknown keys in the file are left alone (the application may store its own there).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

OPTIMIZERS = ("sgd", "adam", "adamw")
SCHEDULES = ("constant", "step", "cosine", "onecycle")
DEVICES = ("auto", "cpu", "cuda", "mps")
PRECISIONS = ("auto", "fp32", "bf16", "fp16")


class ConfigError(ValueError):
    """A training setting that cannot work; the message names the setting and the fix."""


@dataclass
class TrainConfig:
    dataset: str = "shapes"
    classes: list[str] | None = None        # keep only these classes of the dataset
    limit: int | None = None                # at most this many training images
    val_fraction: float = 0.2
    dataset_options: dict[str, Any] = field(default_factory=dict)
    epochs: int = 5
    batch_size: int = 64
    optimizer: str = "adam"
    lr: float = 1e-3
    momentum: float = 0.9
    nesterov: bool = False
    weight_decay: float = 0.0
    schedule: str = "constant"
    step_size: int = 10                     # epochs between decays ("step")
    gamma: float = 0.1                      # decay factor ("step")
    label_smoothing: float = 0.0
    crop_padding: int = 0                   # augmentation: random crop after zero padding
    hflip: bool = False                     # augmentation: random horizontal flip
    seed: int = 0
    device: str = "auto"
    precision: str = "auto"                 # auto: bf16 (or fp16) on CUDA, fp32 elsewhere
    channels_last: bool | None = None       # None: on for CUDA
    compile: bool = False                   # torch.compile the model (CUDA mostly)
    probe_every: int = 0                    # steps between feature-map probes (0: never)
    probe_seconds: float = 0.0              # or: seconds between probes (0: not by time)

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
        def need(ok: bool, message: str) -> None:
            if not ok:
                raise ConfigError(message)

        need(isinstance(self.epochs, int) and self.epochs >= 1,
             f"epochs {self.epochs!r} must be a whole number ≥ 1")
        need(isinstance(self.batch_size, int) and self.batch_size >= 1,
             f"batch size {self.batch_size!r} must be a whole number ≥ 1")
        need(isinstance(self.lr, int | float) and self.lr > 0,
             f"learning rate {self.lr!r} must be a positive number, e.g. 0.001")
        need(self.optimizer in OPTIMIZERS,
             f"optimizer {self.optimizer!r} is not one of {', '.join(OPTIMIZERS)}")
        need(self.schedule in SCHEDULES,
             f"schedule {self.schedule!r} is not one of {', '.join(SCHEDULES)}")
        need(self.device in DEVICES, f"device {self.device!r} is not one of {', '.join(DEVICES)}")
        need(self.precision in PRECISIONS,
             f"precision {self.precision!r} is not one of {', '.join(PRECISIONS)}")
        need(0 <= self.val_fraction < 1, f"val_fraction {self.val_fraction} must be in [0, 1)")
        need(0 <= self.label_smoothing < 1,
             f"label_smoothing {self.label_smoothing} must be in [0, 1)")
        need(self.weight_decay >= 0, f"weight_decay {self.weight_decay} must be ≥ 0")
        need(self.momentum >= 0, f"momentum {self.momentum} must be ≥ 0")
        need(not self.nesterov or (self.optimizer == "sgd" and self.momentum > 0),
             "nesterov needs the sgd optimizer with momentum > 0")
        need(isinstance(self.crop_padding, int) and self.crop_padding >= 0,
             f"crop_padding {self.crop_padding!r} must be a whole number ≥ 0")
        need(self.step_size >= 1, f"step_size {self.step_size} must be ≥ 1")
        need(isinstance(self.probe_seconds, int | float) and self.probe_seconds >= 0,
             f"probe_seconds {self.probe_seconds!r} must be a number ≥ 0")
