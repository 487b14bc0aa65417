"""Plain data the canvas is told about: what to draw for one block, and the drag payload.

The canvas is a projection of a document it does not own, so everything it draws
arrives as frozen values; it never reaches back into the graph to find out more.
"""

from __future__ import annotations

from dataclasses import dataclass

BLOCK_MIME = "application/x-convas-block"
"""Drag payload from the palette: the block type name, utf-8."""

OUTPUT = -1
"""Port index the canvas uses internally for a block's (single) output port."""

EdgeKey = tuple[str, str, int]
"""(source id, destination id, destination port): one wire, as the document names it."""


@dataclass(frozen=True)
class NodeView:
    """What the canvas draws for one block; the caller formats every text."""

    id: str
    type: str
    category: str
    inputs: int
    has_output: bool
    subtitle: str
    shape: str
    params: str
    error: str | None = None
    warning: str | None = None
    pos: tuple[float, float] = (0, 0)
    frozen: bool = False   # training keeps its weights (drawn as a lock in the header)
