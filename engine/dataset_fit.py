"""Does a design fit a dataset: the one rule the trainer and the application share.

A classifier fits a dataset when every Input takes the dataset's images (C×H×W) and
the network gives one number per class. Switching datasets nearly always breaks one
of the two, so the answer is not only "no" but a :class:`Misfit` saying which side
differs, both values, the block to change and the parameter values that fix it: the
trainer refuses with it before training (``engine.train.check_fit``), the application
shows it and offers that edit as one undo step (``designer.dataset_fit``).

Torch-free and Qt-free: it reads the graph and its analysis only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .analysis import Report
    from .graph import Graph

# Blocks that pass a vector through unchanged, so the Linear before them still decides
# how many outputs the network gives.
_PASS_THROUGH = frozenset({"Activation", "Dropout", "BatchNorm"})


@dataclass(frozen=True)
class Misfit:
    """Why a design does not fit a dataset.

    ``kind`` is ``"input"`` (an Input's shape against the images') or ``"classes"``
    (the network's output against the class count). ``design`` and ``data`` are both
    sides as shapes. ``block`` is the block to change; ``changes`` its parameter values
    that make the design fit, empty when no single edit does (then ``fix`` says what to
    build instead).
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


def dataset_misfit(graph: Graph, report: Report, image_shape: Sequence[int],
                   classes: Sequence[str], dataset: str) -> Misfit | None:
    """The first thing about ``graph`` that does not fit the dataset (the Inputs first,
    then the class count), or None when it fits.

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
    seen: set[str] = set()
    while node not in seen:
        seen.add(node)
        kind = graph.type_of(node)
        if kind == "Linear":
            return node
        feeds = graph.inputs_of(node)
        if kind not in _PASS_THROUGH or len(feeds) != 1:
            return None
        before = feeds[0][1]
        if report.nodes[before].output_shape != report.nodes[node].output_shape:
            return None
        node = before
    return None
