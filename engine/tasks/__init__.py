"""Tasks (SPEC §7): what the network's result means, chosen by the Output block.

``task_for(report, classes)`` gives the task object the trainer asks for its loss,
targets, metrics, metrics.csv columns and the fit of a design to a dataset, so the
trainer does not branch on task names.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from ..blocks.io import AVAILABLE_TASKS, DEFAULT_ANCHORS, TASKS
from ..dataset_fit import output_task
from .base import Accumulator, Evaluation, Task, dataset_task
from .classification import MISTAKES_SHOWN, Classification
from .detection import Detection
from .segmentation import Segmentation, iou_per_class, segmentation_metrics

if TYPE_CHECKING:
    from ..analysis import Report

__all__ = [
    "AVAILABLE_TASKS", "MISTAKES_SHOWN", "TASKS", "Accumulator", "Classification",
    "Detection", "Evaluation", "Segmentation", "Task", "dataset_task", "get_task",
    "iou_per_class", "output_anchors", "output_task", "segmentation_metrics", "task_for",
]


def get_task(name: str, classes: Sequence[str] = (),
             anchors: Sequence[Sequence[float]] | None = None,
             image_hw: tuple[int, int] | None = None) -> Task:
    """The task object for an Output's ``task``; ``classes`` names the metrics columns.
    Detection also needs the Output's ``anchors`` and the Input's H×W (the loss and the
    decoding work in input pixels); :func:`task_for` reads both from an analysis."""
    if name == "classification":
        return Classification()
    if name == "segmentation":
        return Segmentation(classes)
    if name == "detection":
        return Detection(classes, anchors or DEFAULT_ANCHORS, image_hw or (64, 64))
    raise ValueError(f"the task {name} is not available yet: use "
                     f"{' or '.join(AVAILABLE_TASKS)}")


def output_anchors(report: Report) -> list[list[float]]:
    """The Output block's ``anchors`` as [[w, h], …] (the default when unread)."""
    info = report.nodes.get(report.output_id) if report.output_id is not None else None
    anchors = (info.resolved or {}).get("anchors") if info is not None else None
    return [list(map(float, a)) for a in (anchors or DEFAULT_ANCHORS)]


def task_for(report: Report, classes: Sequence[str] = ()) -> Task:
    """The task of the analysed design's Output, with what it needs from the design."""
    image_hw = None
    if report.input_ids:
        shape = report.nodes[report.input_ids[0]].output_shape
        if shape is not None and len(shape) == 3:
            image_hw = (int(shape[1]), int(shape[2]))
    return get_task(output_task(report), classes, output_anchors(report), image_hw)

