"""Does the design fit the chosen dataset, and what single edit would make it fit.

Switching datasets nearly always breaks the same two things: the Input block's image
size and the last Linear's number of outputs. The rule is the trainer's own
(``engine.dataset_fit``), asked here about the dataset preview, so the Training dock
says what a run would refuse and offers the edit (one undo step) instead of letting a
run start and fail.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from engine.dataset_fit import Misfit, dataset_misfit

if TYPE_CHECKING:
    from .dataset_preview import DatasetPreview
    from .document import Document

__all__ = ["Misfit", "fit_button_text", "fit_message", "fit_problem"]


def fit_problem(doc: Document, preview: DatasetPreview) -> Misfit | None:
    """What about the design does not fit the previewed dataset, or None."""
    return dataset_misfit(doc.graph, doc.report, preview.image_shape, preview.classes,
                          preview.source, task=preview.task)


def fit_message(misfit: Misfit) -> str:
    """The panel's sentence: both sides, and what to do when no one edit does it."""
    text = _capital(misfit.message)
    return f"{text}: {misfit.fix}." if not misfit.changes else f"{text}."


def fit_button_text(misfit: Misfit) -> str:
    """The fix button's text; empty (no button) when no single edit fixes it."""
    return _capital(misfit.fix) if misfit.changes else ""


def _capital(text: str) -> str:
    return text[:1].upper() + text[1:]
