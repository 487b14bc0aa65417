"""Tasks (SPEC §7): what the network's result means, chosen by the Output block.

``task_for(report, classes)`` gives the task object the trainer asks for its loss,
targets, metrics, metrics.csv columns and the fit of a design to a dataset, so the
trainer does not branch on task names.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ..blocks.io import AVAILABLE_TASKS, DEFAULT_ANCHORS, TASKS
from ..dataset_fit import output_anchors, output_task
from .base import Accumulator, Evaluation, Task, dataset_task
from .classification import MISTAKES_SHOWN, Classification
from .detection import Detection
from .segmentation import Segmentation, iou_per_class, segmentation_metrics

if TYPE_CHECKING:
    from ..analysis import Report

__all__ = [
    "AVAILABLE_TASKS", "MISTAKES_SHOWN", "TASKS", "Accumulator", "Classification",
    "Detection", "Evaluation", "Segmentation", "Task", "dataset_task", "get_task",
    "input_hw", "iou_per_class", "output_anchors", "output_task", "segmentation_metrics",
    "task_for",
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


def trained_anchors(checkpoint: Mapping[str, Any]) -> list[list[float]] | None:
    """The anchors a detector's weights were trained with: the checkpoint's own
    ``anchors``, else its design's Output; None for a checkpoint of no detector."""
    anchors = checkpoint.get("anchors")
    graph = checkpoint.get("graph")
    if anchors is None and isinstance(graph, Mapping):
        for node in graph.get("nodes") or []:
            if not isinstance(node, Mapping):
                continue
            params = node.get("params") or {}
            if node.get("type") == "Output" and params.get("task") == "detection":
                anchors = params.get("anchors", DEFAULT_ANCHORS)
    try:
        return None if anchors is None else [[float(w), float(h)] for w, h in anchors]
    except (TypeError, ValueError):
        return None


def anchors_mismatch(report: Report, trained: Sequence[Sequence[float]] | None) -> str:
    """Why weights trained with the anchors ``trained`` would decode wrongly with the
    design's; "" when they are the same (or either is no detector's). A box is predicted
    relative to its anchor, so the same weights with other anchors give other boxes:
    after a new anchor fit the design must be trained again."""
    if trained is None or output_task(report) != "detection":
        return ""
    design = output_anchors(report)
    same = len(design) == len(trained) and all(
        abs(a - b) < 1e-6 for pa, pb in zip(design, trained, strict=True)
        for a, b in zip(pa, pb, strict=True))
    if same:
        return ""
    return (f"its weights were trained with the anchors {_pairs(trained)} but the design's "
            f"Output now has {_pairs(design)}, and boxes are predicted relative to the "
            f"anchors: train the design again, or set the Output's anchors back")


def _pairs(anchors: Sequence[Sequence[float]]) -> str:
    return "; ".join(",".join(f"{v:g}" for v in pair) for pair in anchors)


def input_hw(report: Report) -> tuple[int, int] | None:
    """The first Input's H×W (what a detector's boxes are measured in); None when it is
    not an image."""
    shape = report.nodes[report.input_ids[0]].output_shape if report.input_ids else None
    return (int(shape[1]), int(shape[2])) if shape is not None and len(shape) == 3 else None


def task_for(report: Report, classes: Sequence[str] = ()) -> Task:
    """The task of the analysed design's Output, with what it needs from the design."""
    return get_task(output_task(report), classes, output_anchors(report), input_hw(report))
