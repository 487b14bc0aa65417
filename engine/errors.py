"""Errors that carry enough context for a person to fix the problem.

Every message names the node (and parameter) at fault and says what to do, because
the same text is shown on the canvas block, in the inspector and on the command line.
"""

from __future__ import annotations

from dataclasses import dataclass


class BlockError(ValueError):
    """Raised by a block's shape rule when its inputs or parameters cannot work.

    The message already contains the fix ("insert Flatten or GlobalAvgPool"); the
    analysis attaches the node id.
    """


@dataclass(frozen=True)
class NodeError:
    """One problem found on one node (or on the graph as a whole when ``node`` is None)."""

    node: str | None
    message: str
    param: str | None = None

    def __str__(self) -> str:
        where = f"node '{self.node}'" if self.node else "graph"
        if self.param:
            where += f", parameter '{self.param}'"
        return f"{where}: {self.message}"

    def to_dict(self) -> dict:
        return {"node": self.node, "message": self.message}


class GraphError(Exception):
    """A graph that cannot be loaded or compiled; ``errors`` lists every problem found."""

    def __init__(self, errors: list[NodeError] | NodeError | str):
        if isinstance(errors, str):
            errors = [NodeError(None, errors)]
        elif isinstance(errors, NodeError):
            errors = [errors]
        self.errors: list[NodeError] = list(errors)
        super().__init__("\n".join(str(e) for e in self.errors))


class GraphFileError(GraphError):
    """The file itself is unreadable or not a Convas graph (JSON, format, version, ids)."""
