"""Convas engine: block catalogue, graph model, analysis and compiler.

The public API (SPEC §5)::

    from engine import Graph, analyze, compile_graph
    g = Graph.load("model.convas.json")
    report = analyze(g)
    model = compile_graph(g)

Importing ``engine`` loads neither Qt nor torch; ``compile_graph`` imports torch when
first called, so the editor's palette and inspector stay light.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .analysis import MemoryEstimate, NodeInfo, Report, analyze
from .blocks import CATALOGUE, CATEGORIES, get_block
from .errors import BlockError, GraphError, GraphFileError, NodeError
from .graph import Edge, Graph
from .spec import BlockSpec, ParamSpec
from .units import human_bytes, human_count

if TYPE_CHECKING:
    from torch import fx


def compile_graph(graph: Graph, report: Report | None = None) -> fx.GraphModule:
    """Compile ``graph`` to a ``torch.fx.GraphModule`` (imports torch on first use)."""
    from .compile import compile_graph as _compile

    return _compile(graph, report)



__all__ = [
    "CATALOGUE", "CATEGORIES", "BlockError", "BlockSpec", "Edge", "Graph", "GraphError",
    "GraphFileError", "MemoryEstimate", "NodeError", "NodeInfo", "ParamSpec", "Report",
    "analyze", "compile_graph", "get_block", "human_bytes", "human_count",
]
