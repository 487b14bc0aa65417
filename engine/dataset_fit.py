"""Does a design fit a dataset: the one rule the trainer and the application share.

A classifier fits a dataset when every Input takes the dataset's images (C×H×W) and
the network gives one number per class; a segmentation network (its Output's task)
when it gives one number per class and pixel, K×H×W at the Input's H×W; a detector
when it gives A·(5+K) channels on its S×S grid for its Output's A anchors (SPEC §7).
Switching datasets nearly always breaks one of the two, so the answer is not only
"no" but a :class:`Misfit` saying which side differs, both values, the block to change
and the parameter values that fix it: the trainer refuses with it before training
(``engine.train.check_fit``), the application shows it and offers that edit as one
undo step (``designer.dataset_fit``).

Torch-free and Qt-free: it reads the graph and its analysis only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .blocks.io import DEFAULT_ANCHORS

if TYPE_CHECKING:
    from .analysis import Report
    from .graph import Graph

# Blocks that pass a vector (or maps) through unchanged, so the Linear (or convolution)
# before them still decides how many outputs the network gives.
_PASS_THROUGH = frozenset({"Activation", "Dropout", "BatchNorm"})
_CONVOLUTIONS = frozenset({"Conv2d", "ConvTranspose2d"})
_TASK_WORDS = {"classification": "a classification dataset (a class per image)",
               "segmentation": "a segmentation dataset (a class per pixel)",
               "detection": "a detection dataset (boxes)"}


@dataclass(frozen=True)
class Misfit:
    """Why a design does not fit a dataset.

    ``kind`` is ``"input"`` (an Input's shape against the images'), ``"task"`` (the
    Output's task against the dataset's), ``"classes"`` (the network's output against
    the class count) or ``"size"`` (a segmentation output's H×W against the images').
    ``design`` and ``data`` are both sides as shapes. ``block`` is the block to change;
    ``changes`` its parameter values that make the design fit, empty when no single
    edit does (then ``fix`` says what to build instead).
    """

    kind: str
    block: str
    design: tuple[int, ...]
    data: tuple[int, ...]
    message: str
    fix: str
    changes: dict[str, int] = field(default_factory=dict)

    def refusal(self) -> str:
        """The trainer's one-line reason: both sides, then what to do."""
        return f"{self.message}: {self.fix}, or choose another dataset"


def shape_text(shape: Sequence[int]) -> str:
    """1×28×28, as the canvas and the dataset descriptions write shapes."""
    return "×".join(str(int(d)) for d in shape)


def output_task(report: Report) -> str:
    """The Output block's task (SPEC §7): "classification" when there is no Output or
    its parameters could not be read (the analysis reports those)."""
    info = report.nodes.get(report.output_id) if report.output_id is not None else None
    resolved = info.resolved if info is not None else None
    return str(resolved.get("task", "classification")) if resolved else "classification"


def dataset_misfit(graph: Graph, report: Report, image_shape: Sequence[int],
                   classes: Sequence[str], dataset: str,
                   task: str = "classification") -> Misfit | None:
    """The first thing about ``graph`` that does not fit the dataset (the Inputs first,
    then the task, then the class count and, for segmentation, the size), or None when
    it fits. ``task`` is the dataset's task.

    ``report`` is ``analyze(graph)``; a shape the analysis could not work out (a design
    with errors) is not judged here: the analysis already reports why.
    """
    data = tuple(int(d) for d in image_shape)
    for input_id in report.input_ids:
        shape = report.nodes[input_id].output_shape
        if shape is not None and tuple(shape) != data:
            c, h, w = data
            return Misfit("input", input_id, tuple(shape), data,
                          f"the Input block '{input_id}' takes {shape_text(shape)} but "
                          f"dataset '{dataset}' has {shape_text(data)} images",
                          f"set the Input '{input_id}' to {shape_text(data)}",
                          {"channels": c, "height": h, "width": w})
    design_task = output_task(report)
    if report.output_id is not None and design_task != task:
        return _task_misfit(report.output_id, design_task, task, dataset, len(classes))
    if task == "segmentation":
        return segmentation_misfit(graph, report, data, classes, dataset)
    if task == "detection":
        return detection_misfit(graph, report, classes, dataset)
    out, k = report.output_shape, len(classes)
    if out is None or report.output_id is None or tuple(out) == (k,):
        return None
    feeds = graph.inputs_of(report.output_id)
    last = feeds[0][1] if feeds else report.output_id
    named = ", ".join(classes[:10]) + (", ..." if k > 10 else "")
    message = (f"the network gives {shape_text(out)} outputs (from '{last}') but dataset "
               f"'{dataset}' has {k} classes ({named})")
    linear = _deciding_linear(graph, report, last) if len(out) == 1 else None
    if linear is not None:
        return Misfit("classes", linear, tuple(out), (k,), message,
                      f"set {linear}'s out_features to {k}", {"out_features": k})
    ending = "a Linear" if len(out) == 1 else "Flatten and a Linear"
    return Misfit("classes", last, tuple(out), (k,), message,
                  f"end the network with {ending} with out_features {k}")


def _deciding_linear(graph: Graph, report: Report, node: str) -> str | None:
    """The Linear whose out_features is the output size: ``node`` itself, or the one
    before blocks that pass a vector through (an activation, dropout)."""
    return _deciding_block(graph, report, node, frozenset({"Linear"}))


def _deciding_block(graph: Graph, report: Report, node: str, kinds: frozenset[str],
                    channels_only: bool = False) -> str | None:
    """The block of one of ``kinds`` that decides the output's size: ``node`` itself,
    or the one before blocks that pass their input through unchanged. With
    ``channels_only`` only the channel count must pass through (an Upsample after a
    segmentation network's classifier convolution keeps its class maps)."""
    passing = _PASS_THROUGH | {"Upsample"} if channels_only else _PASS_THROUGH
    seen: set[str] = set()
    while node not in seen:
        seen.add(node)
        kind = graph.type_of(node)
        if kind in kinds:
            return node
        feeds = graph.inputs_of(node)
        if kind not in passing or len(feeds) != 1:
            return None
        before = feeds[0][1]
        theirs, ours = report.nodes[before].output_shape, report.nodes[node].output_shape
        if (theirs is None or ours is None or theirs[:1] != ours[:1]
                or (not channels_only and theirs != ours)):
            return None
        node = before
    return None


def _task_misfit(output: str, design: str, data: str, dataset: str, k: int) -> Misfit:
    """The Output's task is not the dataset's: no single edit makes a classifier a
    segmentation network, so the fix says what to build."""
    message = (f"the Output '{output}' is set to {design} but dataset '{dataset}' is "
               f"{_TASK_WORDS.get(data, data)}")
    if data == "segmentation":
        fix = (f"set the task of the Output '{output}' to segmentation and end the network "
               f"with a 1×1 Conv2d with out_channels {k} at the Input's size (the FCN and "
               f"U-Net templates do)")
    elif data == "detection":
        fix = (f"set the task of the Output '{output}' to detection and end the network with "
               f"a 1×1 Conv2d with anchors × (5 + {k}) out_channels on an S×S grid (the "
               f"yolo_shapes template does)")
    elif data == "classification":
        fix = (f"set the task of the Output '{output}' to classification and end the "
               f"network with one score per class, e.g. GlobalAvgPool and a Linear with "
               f"out_features {k}")
    else:
        fix = f"set the task of the Output '{output}' to {data}"
    return Misfit("task", output, (), (), message, fix)


def segmentation_misfit(graph: Graph, report: Report, image_shape: Sequence[int],
                        classes: Sequence[str], dataset: str) -> Misfit | None:
    """A segmentation network must give K×H×W: a score per class (the dataset's K,
    background included) for each pixel of the Input's H×W."""
    out, k = report.output_shape, len(classes)
    _, h, w = (int(d) for d in image_shape)
    wanted = (k, h, w)
    if out is None or report.output_id is None or tuple(out) == wanted:
        return None
    feeds = graph.inputs_of(report.output_id)
    last = feeds[0][1] if feeds else report.output_id
    if len(out) != 3:  # the analysis already reports this on the Output block
        return None
    if out[0] != k:
        named = ", ".join(classes[:10]) + (", ..." if k > 10 else "")
        message = (f"the network gives {out[0]} class maps (from '{last}', "
                   f"{shape_text(out)}) but dataset '{dataset}' has {k} classes ({named})")
        conv = _deciding_block(graph, report, last, _CONVOLUTIONS, channels_only=True)
        if conv is not None:
            changes = {"out_channels": k}
            if tuple(out[1:]) == (h, w):
                return Misfit("classes", conv, tuple(out), wanted, message,
                              f"set {conv}'s out_channels to {k}", changes)
            return Misfit("classes", conv, tuple(out), wanted, message,
                          f"set {conv}'s out_channels to {k} and make the output {h}×{w}")
        return Misfit("classes", last, tuple(out), wanted, message,
                      f"end the network with a 1×1 Conv2d with out_channels {k}")
    return Misfit("size", last, tuple(out), wanted,
                  f"the network gives {out[1]}×{out[2]} maps (from '{last}', "
                  f"{shape_text(out)}) but dataset '{dataset}' has {h}×{w} masks",
                  f"make the output of '{last}' {h}×{w} (an Upsample or ConvTranspose2d before "
                  f"the Output, or less downsampling), or set the Input to the size the "
                  f"network keeps")


def output_anchors(report: Report) -> list[list[float]]:
    """The Output block's ``anchors`` as [[w, h], …] (the default when unread)."""
    info = report.nodes.get(report.output_id) if report.output_id is not None else None
    anchors = (info.resolved or {}).get("anchors") if info is not None else None
    return [list(map(float, a)) for a in (anchors or DEFAULT_ANCHORS)]


def detection_misfit(graph: Graph, report: Report, classes: Sequence[str],
                     dataset: str) -> Misfit | None:
    """A detection network must give A·(5+K) channels on its S×S grid (SPEC §7): for
    each of the Output's A anchors a box (4), an objectness and K class scores."""
    out, k = report.output_shape, len(classes)
    if out is None or report.output_id is None or len(out) != 3:
        return None  # not a grid: the analysis reports this on the Output block
    a = len(output_anchors(report))
    wanted = a * (5 + k)
    if out[0] == wanted:
        return None
    feeds = graph.inputs_of(report.output_id)
    last = feeds[0][1] if feeds else report.output_id
    sizes = f"{wanted} = {a} anchor{'s' if a != 1 else ''} × (5 + {k} classes)"
    message = (f"the network gives {out[0]} channels per cell (from '{last}', "
               f"{shape_text(out)}) but dataset '{dataset}' with {k} classes and the "
               f"Output's {a} anchors needs {sizes}")
    conv = _deciding_block(graph, report, last, _CONVOLUTIONS, channels_only=True)
    if conv is not None:
        return Misfit("classes", conv, tuple(out), (wanted, *out[1:]), message,
                      f"set out_channels of '{conv}' to {sizes}", {"out_channels": wanted})
    return Misfit("classes", last, tuple(out), (wanted, *out[1:]), message,
                  f"end the network with a 1×1 Conv2d with out_channels {sizes}")
