"""Small graphs for the engine tests, built in code."""

from __future__ import annotations

from engine import Graph


def build(nodes: list[tuple], edges: list[tuple], name: str = "t") -> Graph:
    """nodes: (id, type, params); edges: (src, dst) or (src, dst, port)."""
    g = Graph(name)
    for nid, type_name, params in nodes:
        g.add_node(nid, type_name, params)
    for e in edges:
        g.add_edge(*e)
    return g
