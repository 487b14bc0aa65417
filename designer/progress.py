"""A terminal progress bar for ``convas train``, fed by the trainer's events."""

from __future__ import annotations

import sys
import time
from typing import TextIO

from engine.train_events import EpochEvent, Event, ReadyEvent, StepEvent


def _duration(seconds: float) -> str:
    seconds = int(max(seconds, 0))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


# What the running training figure is, by task: the share of labelled pixels right for
# segmentation, and for detection the share of true boxes whose cell and anchor say
# "object" with the right class ("found"; the mAP needs a whole validation pass).
ACCURACY_NAMES = {"segmentation": "px acc", "detection": "found"}


def _pct(x: float | None) -> str:
    return "—" if x is None else f"{100 * x:.1f}%"


class ProgressPrinter:
    """Redraws one status line on a terminal; prints only epoch lines into a log file."""

    def __init__(self, stream: TextIO | None = None, width: int = 24) -> None:
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self.width = width
        self._last_draw = 0.0
        self._line_open = False
        self._rate: float | None = None
        self._accuracy = "acc"  # the running figure's name: ACCURACY_NAMES by task

    def __call__(self, event: Event) -> None:
        if isinstance(event, ReadyEvent):
            self._ready(event)
        elif isinstance(event, StepEvent):
            self._step(event)
        elif isinstance(event, EpochEvent):
            self._epoch(event)

    def _ready(self, e: ReadyEvent) -> None:
        self._accuracy = ACCURACY_NAMES.get(e.task, "acc")
        shape = "×".join(map(str, e.image_shape))
        self.stream.write(f"on {e.device}, {e.precision}: {e.train_size:,} training / "
                          f"{e.val_size:,} validation images {shape}, {len(e.classes)} "
                          f"classes, {e.steps_per_epoch} steps per epoch\n")
        self.stream.flush()

    def _step(self, e: StepEvent) -> None:
        # images/s smoothed, so the ETA does not jump with every window
        self._rate = e.images_per_s if self._rate is None else 0.8 * self._rate + \
            0.2 * e.images_per_s
        now = time.monotonic()
        if not self.tty or (now - self._last_draw < 0.1 and e.step != e.steps_per_epoch):
            return
        self._last_draw = now
        done = e.step / e.steps_per_epoch
        filled = int(done * self.width)
        bar = "█" * filled + "·" * (self.width - filled)
        steps_left = e.total_steps - e.global_step
        eta = steps_left * (e.elapsed / max(e.global_step, 1))
        line = (f"epoch {e.epoch} {bar} {e.step}/{e.steps_per_epoch}  loss {e.loss:.4f}  "
                f"{self._accuracy} {_pct(e.accuracy)}  {self._rate:,.0f} img/s  "
                f"ETA {_duration(eta)}")
        self.stream.write("\r" + line + "\033[K")
        self.stream.flush()
        self._line_open = True

    def _epoch(self, e: EpochEvent) -> None:
        if self._line_open:
            self.stream.write("\r\033[K")
            self._line_open = False
        if e.val_loss is None:
            val = ""
        elif e.task == "segmentation":
            miou = "—" if e.miou is None else f"{e.miou:.3f}"
            val = f"  val loss {e.val_loss:.4f} mIoU {miou} px acc {_pct(e.val_accuracy)}"
        elif e.task == "detection":
            m50, m = e.metrics.get("val_map50"), e.metrics.get("val_map")
            val = (f"  val loss {e.val_loss:.4f} mAP@0.5 {_num(m50)} "
                   f"mAP@0.5:0.95 {_num(m)}")
        else:
            val = f"  val loss {e.val_loss:.4f} acc {_pct(e.val_accuracy)}"
        acc = ACCURACY_NAMES.get(e.task, "acc")
        self.stream.write(f"epoch {e.epoch}/{e.epochs}: loss {e.train_loss:.4f} "
                          f"{acc} {_pct(e.train_accuracy)}{val}  ({e.seconds:.1f} s)\n")
        self.stream.flush()

    def close(self) -> None:
        if self._line_open:
            self.stream.write("\n")
            self._line_open = False


def _num(value: float | None) -> str:
    return "—" if value is None or value != value else f"{value:.3f}"
