"""Edit → Make Fully Convolutional: the course notes' conversion of a classifier's
``Flatten → Linear`` head into convolutions (``engine.fcn``), as one undoable edit of
the open design.

The point of the command is the notes' claim that the converted network is the same
network, so the message shows the parameter count before and after from the analysis
rather than asserting it. A trained classifier stays trained: when the last run's
weights fit the design, they are converted too and saved beside the run's checkpoint
(``model.fcn.pt``, see ``designer.trained``), which the application then uses for
feature maps, exports and predictions while the converted design is current; after
Undo the run's own ``model.pt`` fits again and is used again.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from .trained import Trained, converted_path

if TYPE_CHECKING:
    from .document import Document

# What a converted checkpoint does not keep: resuming the run's optimizer on weights of
# other shapes would make no sense, and the graph and weights are the converted ones.
NOT_CARRIED = ("format", "version", "graph", "state_dict", "task", "optimizer", "scheduler",
               "converted_from")


@dataclass(frozen=True)
class FcnOutcome:
    """What the command did (``ok``) or why it refused, in words for the user."""

    ok: bool
    message: str
    weights: Path | None = None      # the converted checkpoint, when one was written


def make_design_fully_convolutional(doc: Document, trained: Trained | None) -> FcnOutcome:
    """Convert ``doc``'s design (one undo step) and, when ``trained`` holds weights that
    fit it, save them converted beside their checkpoint. Never raises for a design that
    cannot be converted: the outcome's message says why and what to do."""
    from engine import GraphError
    from engine.fcn import FcnError, make_fully_convolutional

    if doc.report.errors:
        return FcnOutcome(False, "The design has errors: fix those listed under Problems "
                                 "first, then make it fully convolutional.")
    state = trained.state_dict if trained is not None else None
    try:
        result = make_fully_convolutional(doc.graph, state)
    except (FcnError, GraphError) as exc:
        return FcnOutcome(False, f"Cannot make the design fully convolutional: {exc}.")
    written, note = _save_weights(trained, result)
    before = doc.report.total_params
    doc.replace_graph(result.graph, "Make fully convolutional")
    after = doc.report.total_params
    same = "unchanged" if before == after else f"{after - before:+,}"
    message = (f"Made fully convolutional: {result.describe()}. Parameters: {before:,} "
               f"before, {after:,} after ({same}). {note}")
    return FcnOutcome(True, message, written)


def _save_weights(trained: Trained | None, result) -> tuple[Path | None, str]:
    """The converted weights as a checkpoint beside the original (keeping its task,
    classes and preprocessing), and a sentence on what became of the weights."""
    from engine.checkpoint import CheckpointError, load_checkpoint, save_checkpoint

    if trained is None or trained.path is None or result.state_dict is None:
        return None, ("No trained weights fit the design, so it starts untrained: train it "
                      "to see its heat maps.")
    target = converted_path(trained.path)
    try:
        data = load_checkpoint(trained.path)
        extra = {k: v for k, v in data.items() if k not in NOT_CARRIED}
        save_checkpoint(target, result.graph, result.state_dict,
                        task=data.get("task", "classification"),
                        converted_from=trained.path.name, **extra)
    except (CheckpointError, OSError) as exc:
        return None, (f"The trained weights could not be converted ({exc}): the design "
                      f"is converted but untrained.")
    return target, (f"The trained weights were converted too ({target.name}, beside "
                    f"{trained.path.name}): feature maps, exports and predictions use them.")
