"""Classification: one class per image (SPEC §4, §7)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

import numpy as np
import torch

from ..data import ImageSet
from .base import Accumulator, Evaluation, Task

MISTAKES_SHOWN = 32  # most confident validation mistakes reported after each epoch


class MistakeAccumulator(Accumulator):
    """The loss and confusion matrix, and the MISTAKES_SHOWN most confident wrong
    predictions, the ones most worth a look. Candidates stay on the device until the
    end, so this adds no per-batch transfer."""

    def __init__(self, num_classes: int, device: torch.device):
        super().__init__(num_classes, device)
        self._wrong: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = []
        self._n = 0

    def add(self, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        predicted = super().add(out, y)
        confidence = out.float().softmax(1).gather(1, predicted[:, None])[:, 0]
        miss = predicted != y
        index = torch.arange(self._n, self._n + len(y), device=y.device)
        self._wrong.append((confidence[miss], index[miss], predicted[miss]))
        self._n += len(y)
        return predicted

    def finish(self, source: ImageSet | None = None) -> Evaluation:
        """With ``source`` (the ImageSet of the unshuffled batches), the evaluation's
        ``extras`` are EpochEvent's ``wrong_*`` fields."""
        evaluation = super().finish(source)
        if source is None or not self._wrong:
            return evaluation
        confidence, index, predicted = (torch.cat(t) for t in zip(*self._wrong, strict=True))
        if not len(confidence):
            return evaluation
        top = confidence.topk(min(MISTAKES_SHOWN, len(confidence))).indices
        index = index[top].cpu()
        evaluation.extras = dict(wrong_images=source.x[index].numpy().copy(),
                                 wrong_true=source.y[index].numpy().astype(np.int64),
                                 wrong_predicted=predicted[top].cpu().numpy(),
                                 wrong_confidence=confidence[top].cpu().numpy())
        return evaluation


class Classification(Task):
    """Logits [N, K] against class indexes [N]: cross-entropy, accuracy."""

    name: ClassVar[str] = "classification"
    target: ClassVar[str] = "one class index per image"

    def accumulator(self, num_classes: int, device: torch.device) -> Accumulator:
        return MistakeAccumulator(num_classes, device)

    def columns(self, classes: Sequence[str]) -> list[str]:
        return ["epoch", "train_loss", "train_accuracy", "val_loss", "val_accuracy",
                "seconds", "lr"]

    def target_shape(self, data: ImageSet) -> tuple[int, ...]:
        return ()


    def decode(self, out: torch.Tensor, classes: Sequence[str], top: int = 5) -> list[dict]:
        """Each image's ``top`` most probable classes (softmax over the logits [N, K]),
        most probable first: ``{"top": [{"class", "index", "probability"}, ...]}``."""
        if out.dim() > 2 and all(n == 1 for n in out.shape[2:]):
            out = out.flatten(1)  # a classifier made fully convolutional: [N, K, 1, 1]
        probabilities = out.float().softmax(1).cpu()
        k = max(1, min(int(top), probabilities.shape[1]))
        values, indexes = probabilities.topk(k, dim=1)
        return [{"top": [{"class": _name(classes, int(i)), "index": int(i),
                          "probability": float(p)}
                         for p, i in zip(row_p.tolist(), row_i.tolist(), strict=True)]}
                for row_p, row_i in zip(values, indexes, strict=True)]


def _name(classes: Sequence[str], index: int) -> str:
    """The class's name; its number where the checkpoint names fewer classes."""
    return str(classes[index]) if index < len(classes) else str(index)
