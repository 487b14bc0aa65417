"""The last run's weights, matched against the design as it is now.

After a run the application shows any block's feature maps from its checkpoint
(selecting a block after training). That is asked in the GUI thread at every
selection, so the compiled model is cached until the checkpoint or the design (its
revision) changes. (Exports read the checkpoint themselves, through
``engine.export.export_design``, as the command line does.)

A run's folder can hold more than one checkpoint for the same weights: "Make fully
convolutional" saves the converted weights beside ``model.pt`` as ``model.fcn.pt``.
The cache tries them in turn and takes the first that fits the design as it is now,
so after Undo the original weights are used again, and ``Trained.path`` says which
file that was (for exports and predictions).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Trained:
    """A compiled model with the run's weights, and the normalisation it was trained on."""

    model: Any                       # torch.fx.GraphModule, in eval mode
    state_dict: dict
    mean: list[float]
    std: list[float]
    path: Path | None = None         # the checkpoint file the weights came from

    def maps(self, images: np.ndarray, index: int,
             node: str) -> tuple[np.ndarray, np.ndarray | None] | None:
        """``node``'s output for ``images[index]`` (as stored: uint8 or 0..1) and its
        kernels when it is a convolution; None for a block the model cannot probe."""
        import torch

        from engine.probe import activations, kernels

        raw = torch.as_tensor(images[index:index + 1]).float()
        if images.dtype == np.uint8:
            raw = raw / 255.0
        channels = images.shape[1]
        mean = torch.tensor(self.mean or [0.0] * channels).view(1, -1, 1, 1)
        std = torch.tensor(self.std or [1.0] * channels).view(1, -1, 1, 1)
        out = activations(self.model, (raw - mean) / std, [node])
        return (out[node], kernels(self.model, node)) if node in out else None


CONVERTED_SUFFIX = ".fcn.pt"   # model.pt made fully convolutional: model.fcn.pt


def converted_path(checkpoint: Path) -> Path:
    """Where the fully convolutional version of ``checkpoint``'s weights is kept."""
    return checkpoint.with_name(checkpoint.stem + CONVERTED_SUFFIX)


def run_checkpoints(checkpoint: Path | None) -> list[Path]:
    """The last run's checkpoint and the converted versions made from it, in the
    order they are tried."""
    if checkpoint is None:
        return []
    converted = converted_path(checkpoint)
    return [checkpoint, *([converted] if converted.is_file() else [])]


class TrainedCache:
    """``get()`` the Trained for a checkpoint and design, or None when there is no
    checkpoint, it cannot be read, or the design changed so that its weights no longer
    fit (``problem`` says which)."""

    def __init__(self) -> None:
        self._key: tuple | None = None
        self._value: Trained | None = None
        self.problem = ""             # why the last get() gave None, for a person

    def get(self, checkpoint: Path | None, graph, revision: int) -> Trained | None:
        if checkpoint is None:
            self.problem = "no training run yet"
            return None
        key = (str(checkpoint), revision)
        if key != self._key:
            self._key = key
            self._value, self.problem = self._load(run_checkpoints(checkpoint), graph)
        return self._value

    @staticmethod
    def _load(paths: list[Path], graph) -> tuple[Trained | None, str]:
        """The first of ``paths`` whose weights fit ``graph``; else why none did, as
        the run's own checkpoint (the first) says it."""
        from engine import GraphError, compile_graph
        from engine.checkpoint import CheckpointError, load_checkpoint, weights_mismatch

        try:
            model = compile_graph(graph)
        except GraphError:
            return None, "the design has errors"
        problem = ""
        for path in paths:
            try:
                data = load_checkpoint(path)
            except (CheckpointError, OSError) as exc:
                problem = problem or f"the last run's checkpoint cannot be read ({exc})"
                continue
            state = data["state_dict"]
            if weights_mismatch(model, state):
                problem = problem or "the design changed since the last training run"
                continue
            model.load_state_dict(state)
            mean = [float(v) for v in data.get("mean") or []]
            std = [float(v) for v in data.get("std") or []]
            return Trained(model.eval(), state, mean, std, Path(path)), ""
        return None, problem
