"""Does the design fit the chosen dataset, and what single edit would make it fit.

Switching datasets nearly always breaks the same two things: the Input block's image
size and the last Linear's number of outputs. The Training dock says which, and offers
the edit (one undo step) instead of letting a run start and fail.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .dataset_preview import DatasetPreview
    from .document import Document


@dataclass(frozen=True)
class Fit:
    """Why the design does not fit the dataset, and the one edit that fixes it."""

    node: str
    message: str
    changes: dict
    button: str


def fit_problem(doc: Document, preview: DatasetPreview) -> Fit | None:
    """An Input that does not take the dataset's images, or a last Linear whose outputs
    do not match its classes (the two mismatches every dataset switch brings)."""
    report = doc.report
    c, h, w = preview.image_shape
    for input_id in report.input_ids:
        shape = report.nodes[input_id].output_shape
        if shape is not None and tuple(shape) != (c, h, w):
            return Fit(input_id, f"The Input block '{input_id}' takes "
                                 f"{'×'.join(map(str, shape))}, but these images are "
                                 f"{c}×{h}×{w}.",
                       {"channels": c, "height": h, "width": w},
                       f"Set the Input to {c}×{h}×{w}")
    k = len(preview.classes)
    out = report.output_shape
    if out is not None and len(out) == 1 and out[0] != k and report.output_id is not None:
        feeds = doc.graph.inputs_of(report.output_id)
        last = feeds[0][1] if feeds else None
        if last is not None and doc.graph.type_of(last) == "Linear":
            return Fit(last, f"The network gives {out[0]} outputs (from '{last}'), but the "
                             f"dataset has {k} classes.", {"out_features": k},
                       f"Set {last}'s out_features to {k}")
    return None
