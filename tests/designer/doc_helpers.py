"""Shared by the document tests: canonical forms of graph and report dicts."""

from __future__ import annotations

import copy
import json
from pathlib import Path

from designer.document import Document
from engine import Graph, analyze

ROOT = Path(__file__).resolve().parents[2]
LENET = ROOT / "resources" / "templates" / "lenet5.convas.json"


def norm(d: dict) -> str:
    """A graph dict in a canonical form: node and edge order and int/float positions do
    not matter; everything else, including True vs 1 in params, does."""
    d = copy.deepcopy(d)
    for n in d["nodes"]:
        if "pos" in n:
            n["pos"] = [float(v) for v in n["pos"]]
    d["nodes"].sort(key=lambda n: n["id"])
    d["edges"].sort(key=lambda e: (e["from"], e["to"], e.get("port", 0)))
    return json.dumps(d, sort_keys=True)


def norm_report(r: dict) -> str:
    r = dict(r)
    r["nodes"] = sorted(r["nodes"], key=lambda n: n["id"])
    r["errors"] = sorted(r["errors"], key=lambda e: (e["node"] or "", e["message"]))
    r["warnings"] = sorted(r["warnings"], key=lambda e: (e["node"] or "", e["message"]))
    return json.dumps(r, sort_keys=True)


def assert_report_is_fresh(doc: Document) -> None:
    """The document's kept report is what analysing its graph from scratch gives: the
    incremental analysis after edits, undos and redos has not drifted."""
    fresh = analyze(Graph.from_dict(doc.to_dict()))
    assert norm_report(doc.report.to_dict()) == norm_report(fresh.to_dict())


class Recorder:
    """Every signal of a document, in order, as (name, *args)."""

    NAMES = ("node_added", "node_removed", "edge_added", "edge_removed", "params_changed",
             "nodes_moved", "analysis_changed", "dirty_changed", "path_changed", "reset")

    def __init__(self, doc: Document) -> None:
        self.events: list[tuple] = []
        for name in self.NAMES:
            getattr(doc, name).connect(lambda *a, _n=name: self.events.append((_n, *a)))

    def of(self, *names: str) -> list[tuple]:
        return [e for e in self.events if e[0] in names]

    def clear(self) -> None:
        self.events.clear()
