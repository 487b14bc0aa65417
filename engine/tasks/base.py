"""What a task tells the trainer: its loss, what a target is, its validation metrics,
its metrics.csv columns and whether a design fits a dataset (SPEC §7).

The trainer holds one task object, chosen by the Output block's ``task``, and asks it
instead of branching on task names: adding a task is adding a module here.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar

import numpy as np
import torch
from torch import nn

from ..data import DatasetError, ImageSet
from ..dataset_fit import dataset_misfit

if TYPE_CHECKING:
    from ..analysis import Report
    from ..data import Dataset
    from ..dataset_fit import Misfit
    from ..graph import Graph
    from ..train_config import TrainConfig
    from ..train_events import PredictionEvent


@dataclass
class Evaluation:
    """One pass over the validation set.

    ``loss`` is the mean over what the task counts (images, or labelled pixels);
    ``accuracy`` the fraction of those predicted right (detection: the mAP@0.5);
    ``confusion`` counts them as [true, predicted] (None for detection, which has no
    one class per image or pixel); ``metrics`` are the task's own metrics.csv values
    (``val_…`` columns beyond ``val_loss``/``val_accuracy``); ``extras`` are further
    EpochEvent fields (the classifier's most confident mistakes).
    """

    loss: float
    accuracy: float
    confusion: np.ndarray | None
    metrics: dict[str, float | None] = field(default_factory=dict)
    extras: dict[str, np.ndarray] = field(default_factory=dict)


class Accumulator:
    """Sums a validation pass on the device: the loss and one confusion matrix over all
    batches, so metrics are of the whole set and not a mean of per-batch values.
    ``ignore`` is a target value that counts nowhere (segmentation's 255)."""

    def __init__(self, num_classes: int, device: torch.device, ignore: int | None = None):
        self.k = num_classes
        self.ignore = ignore
        self.loss_sum = torch.zeros((), device=device)
        self.counts = torch.zeros(num_classes * num_classes, dtype=torch.long, device=device)

    def add(self, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Count one batch (logits ``out``, targets ``y``); returns the predictions."""
        out = out.float()
        self.loss_sum += nn.functional.cross_entropy(
            out, y, reduction="sum", ignore_index=-100 if self.ignore is None else self.ignore)
        predicted = self.predict(out)
        self.count(y, predicted)
        return predicted

    def count(self, y: torch.Tensor, predicted: torch.Tensor) -> None:
        """Add one batch's [true, predicted] pairs to the confusion matrix."""
        cells = y * self.k + predicted
        if self.ignore is not None:  # ignored pixels go to one extra bin, dropped below
            cells = torch.where(y == self.ignore, self.k * self.k, cells)
        self.counts += torch.bincount(cells.flatten(), minlength=self.k * self.k + 1)[
            :self.k * self.k]

    def reduce(self) -> None:
        """Add up every process's sums (a distributed validation, each process on its
        share of the set); the extras stay this process's."""
        from .. import distributed

        distributed.all_sum(self.loss_sum)
        distributed.all_sum(self.counts)

    def predict(self, out: torch.Tensor) -> torch.Tensor:
        """The predicted class of each target (argmax over the class axis)."""
        return out.argmax(1)

    def confusion(self) -> np.ndarray:
        return self.counts.view(self.k, self.k).cpu().numpy()

    def finish(self, source: ImageSet | None = None) -> Evaluation:
        """The evaluation; ``source`` is the ImageSet the unshuffled batches came from."""
        matrix = self.confusion()
        counted = max(int(matrix.sum()), 1)
        return Evaluation(self.loss_sum.item() / counted, float(np.trace(matrix)) / counted,
                          matrix)


class Task(ABC):
    """One task: the Output block's ``task`` names it (engine.tasks.get_task)."""

    name: ClassVar[str]
    # What a target is, for messages: the shape of ``y`` per image and its meaning.
    target: ClassVar[str]
    # A target value that counts in no loss and no metric, if the task has one.
    ignore: ClassVar[int | None] = None
    # Whether ``prediction`` gives a PredictionEvent at each probe (the network's output
    # for the probe image is then needed even when no feature map is).
    live_prediction: ClassVar[bool] = False

    def criterion(self, config: TrainConfig) -> nn.Module:
        """The training loss (cross-entropy with the config's label smoothing)."""
        return nn.CrossEntropyLoss(label_smoothing=config.label_smoothing)

    def hits(self, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """[right, counted] for the running training accuracy, on the device (no sync)."""
        right = out.argmax(1) == y
        return torch.stack((right.sum(), right.new_full((), right.numel(), dtype=torch.long)))

    @abstractmethod
    def accumulator(self, num_classes: int, device: torch.device) -> Accumulator:
        """A fresh validation accumulator."""

    @abstractmethod
    def columns(self, classes: Sequence[str]) -> list[str]:
        """metrics.csv's columns, in order."""

    def epoch_metrics(self, train_accuracy: float,
                      evaluation: Evaluation | None) -> dict[str, float | None]:
        """An EpochEvent's ``metrics``: the columns beyond the classifier's own."""
        return dict(evaluation.metrics) if evaluation is not None else {}

    def misfit(self, graph: Graph, report: Report, dataset: Dataset) -> Misfit | None:
        """What about ``graph`` does not fit ``dataset``, or None. The rule is
        engine.dataset_fit's (torch-free, so the application asks it too): the Inputs,
        the Output's task against the dataset's, then this task's output shape."""
        return dataset_misfit(graph, report, dataset.image_shape, dataset.classes,
                              dataset.name, dataset_task(dataset))

    def check_targets(self, dataset: Dataset) -> None:
        """Refuse labels the loss cannot take (DatasetError): a wrong shape, or a class
        index out of range, which on a GPU would end in an unreadable device assert."""
        k = dataset.num_classes
        for split, data in (("training", dataset.train), ("validation", dataset.val)):
            if len(data) == 0:
                continue
            problem = self._target_problem(data, k)
            if problem:
                raise DatasetError(f"dataset '{dataset.name}': the {split} labels {problem}")

    def _target_problem(self, data: ImageSet, k: int) -> str:
        y = data.y
        n = len(data)
        if tuple(y.shape) != (n, *self.target_shape(data)):
            return (f"are {_shape(y.shape)} but a {self.name} target is {self.target} "
                    f"({_shape((n, *self.target_shape(data)))})")
        if y.is_floating_point() or y.dtype == torch.bool:
            return f"are {y.dtype}, not class indexes"
        values = y[y != self.ignore] if self.ignore is not None else y
        if values.numel() and (int(values.min()) < 0 or int(values.max()) >= k):
            bad = int(values.max()) if int(values.max()) >= k else int(values.min())
            allowed = f"0…{k - 1}" + (f" or {self.ignore}" if self.ignore is not None else "")
            return f"hold the class {bad} but there are {k} classes ({allowed})"
        return ""

    @abstractmethod
    def target_shape(self, data: ImageSet) -> tuple[int, ...]:
        """The shape of one image's target."""

    def probe_targets(self, y: torch.Tensor) -> np.ndarray | None:
        """ReadyEvent's ``probe_targets`` for the probe images' targets ``y``: what a
        live view shows beside the task's PredictionEvents; None when it shows none."""
        return None

    def prediction(self, out: torch.Tensor, global_step: int,
                   probe_index: int) -> PredictionEvent | None:
        """The live PredictionEvent for the probe image's output ``out`` (a batch of
        one) where ``live_prediction`` says there is one; None otherwise."""
        return None

    def decode(self, out: torch.Tensor, classes: Sequence[str], top: int = 5) -> list[dict]:
        """What the network says about each image of a batch of logits ``out``, as plain
        data for ``convas predict`` (engine.predict): the task owns what its output
        means, so predict does not branch on task names."""
        raise NotImplementedError(f"{self.name} predictions cannot be decoded yet")


def dataset_task(dataset: Dataset) -> str:
    """The dataset's task ("classification" for loaders that predate the field)."""
    return str(getattr(dataset, "task", "classification"))


def _shape(shape: Sequence[int]) -> str:
    return "[" + ", ".join(str(int(d)) for d in shape) + "]"
