"""Tasks (SPEC §7): what the network's result means, chosen by the Output block.

``task_for(report, dataset)`` gives the task object the trainer asks for its loss,
targets, metrics, metrics.csv columns and the fit of a design to a dataset, so the
trainer does not branch on task names. Detection is named in the Output's choices
but not available yet (the analysis says so on the Output block).
"""

from __future__ import annotations

from collections.abc import Sequence

from ..blocks.io import AVAILABLE_TASKS, TASKS
from ..dataset_fit import output_task
from .base import Accumulator, Evaluation, Task, dataset_task
from .classification import MISTAKES_SHOWN, Classification
from .segmentation import Segmentation, iou_per_class, segmentation_metrics

__all__ = [
    "AVAILABLE_TASKS", "MISTAKES_SHOWN", "TASKS", "Accumulator", "Classification",
    "Evaluation", "Segmentation", "Task", "dataset_task", "get_task", "iou_per_class",
    "output_task", "segmentation_metrics",
]


def get_task(name: str, classes: Sequence[str] = ()) -> Task:
    """The task object for an Output's ``task``; ``classes`` names the metrics columns."""
    if name == "classification":
        return Classification()
    if name == "segmentation":
        return Segmentation(classes)
    raise ValueError(f"the task {name} is not available yet: use "
                     f"{' or '.join(AVAILABLE_TASKS)}")
