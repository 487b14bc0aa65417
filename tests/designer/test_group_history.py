"""Random sequences of Group, Ungroup, going into instances' bodies, edits there (set a
parameter, add a block), going back up, undo and redo, checked after every step
against an independent replay on plain dicts (engine.grouping for Group and Ungroup),
with a stand-in view fed only by the document's signals; save → load at the end."""

from __future__ import annotations

import copy
import json
import sys
import tempfile
from pathlib import Path

import hypothesis.strategies as st
from doc_helpers import assert_report_is_fresh
from hypothesis import HealthCheck, settings
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from designer.document import Document
from designer.group_dialog import candidates
from engine import Graph, grouping

sys.path.insert(0, str(Path(__file__).parents[1] / "engine"))
from user_block_designs import nested_design  # noqa: E402

ADDED_TYPES = ["Activation", "BatchNorm", "Dropout"]
VALUES = st.one_of(st.integers(1, 9), st.sampled_from(["$width", "$k", "relu", "tanh"]))


def norm(d: dict) -> str:
    """Canonical: node and edge order and int/float positions do not matter, in the
    design and in each block."""
    d = copy.deepcopy(d)
    for part in [d, *d.get("blocks", {}).values()]:
        for n in part["nodes"]:
            if n.get("pos") is not None:
                n["pos"] = [float(v) for v in n["pos"]]
        part["nodes"].sort(key=lambda n: n["id"])
        part["edges"].sort(key=lambda e: (e["from"], e["to"], e.get("port", 0)))
    return json.dumps(d, sort_keys=True)


def part(d: dict, block: str | None) -> dict:
    return d if block is None else d["blocks"][block]


def replay(d: dict, op: dict) -> dict:
    """One edit record applied to a file dict, as SPEC §9 says."""
    kind = op["op"]
    if kind == "group":
        return grouping.group(Graph.from_dict(d), op["ids"], op["name"], op["args"])[0].to_dict()
    if kind == "ungroup":
        return grouping.ungroup(Graph.from_dict(d), op["id"]).to_dict()
    d = copy.deepcopy(d)
    nodes = part(d, op["block"])["nodes"]
    if kind == "param":
        next(n for n in nodes if n["id"] == op["node"]).setdefault("params", {})[
            op["name"]] = op["value"]
    elif kind == "add":
        nodes.append(copy.deepcopy(op["node"]))
    return d


class GroupMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.doc = Document()
        self.doc.new_from(Graph.from_dict(nested_design()))
        self.initial = self.doc.to_dict()
        self.done: list[dict] = []
        self.undone: list[dict] = []
        self.path: list[str] = []      # the instances we went into, as the model sees it
        self.names = 0
        self.view = ShownView(self.doc)

    def teardown(self) -> None:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "final.convas.json"
            self.doc.save(path)
            assert norm(Graph.load(path).to_dict()) == norm(self.doc.to_dict())
            other = Document()
            other.open(path)
            assert norm(other.to_dict()) == norm(self.doc.to_dict()) and not other.is_dirty

    def model(self) -> dict:
        d = copy.deepcopy(self.initial)
        for op in self.done:
            d = replay(d, op)
        return d

    def pushed(self, op: dict) -> None:
        self.done.append(op)
        self.undone.clear()
        self.doc.end_edit()   # no merging of consecutive edits: each is a step

    def shown_block(self, d: dict) -> str | None:
        """The block whose body the model's path opens (None: the design)."""
        block = None
        for inst in self.path:
            block = next(n["type"] for n in part(d, block)["nodes"] if n["id"] == inst)
        return block

    def shown_nodes(self) -> list[dict]:
        d = self.model()
        return part(d, self.shown_block(d))["nodes"]

    # ---- rules -----------------------------------------------------------------------

    @precondition(lambda self: not self.path)
    @rule(data=st.data(), start=st.integers(0, 6), length=st.integers(1, 3),
          argument=st.booleans())
    def group(self, data, start, length, argument):
        order = [n["id"] for n in self.model()["nodes"]]   # the listed order is a chain
        ids = order[start:start + length]
        args = {}
        if argument and ids:
            g = Graph.from_dict(self.model())
            options = candidates(g, ids)
            if options:
                node, param, _, name = data.draw(st.sampled_from(options))
                args = {name: (node, param)}
        self.names += 1
        name = f"G{self.names}"
        op = {"op": "group", "ids": ids, "name": name, "args": args}
        try:
            expected = replay(self.model(), op)
        except ValueError as exc:
            expected = exc
        try:
            self.doc.group(ids, name, args)
        except ValueError as exc:
            assert isinstance(expected, ValueError) and str(exc) == str(expected)
            return
        assert not isinstance(expected, ValueError)
        self.pushed(op)

    @precondition(lambda self: not self.path)
    @rule(data=st.data())
    def ungroup(self, data):
        d = self.model()
        instances = [n["id"] for n in d["nodes"] if n["type"] in d.get("blocks", {})]
        if not instances:
            return
        inst = data.draw(st.sampled_from(instances))
        self.doc.ungroup(inst)
        self.pushed({"op": "ungroup", "id": inst})

    @rule(data=st.data())
    def enter(self, data):
        d = self.model()
        instances = [n["id"] for n in self.shown_nodes() if n["type"] in d.get("blocks", {})]
        if not instances:
            assert not any(self.doc.can_enter(n) for n in self.doc.shown.nodes)
            return
        inst = data.draw(st.sampled_from(instances))
        assert self.doc.enter(inst)
        self.path.append(inst)

    @rule()
    def leave(self):
        assert self.doc.leave() is bool(self.path)
        if self.path:
            self.path.pop()

    @precondition(lambda self: self.path)
    @rule(data=st.data(), value=VALUES)
    def set_param_inside(self, data, value):
        inner = [n for n in self.shown_nodes() if n["type"] not in ("Input", "Output")]
        if not inner:
            return
        node = data.draw(st.sampled_from(inner))
        spec = self.doc.shown.spec(node["type"])
        if not spec.params:
            return
        name = data.draw(st.sampled_from([p.name for p in spec.params]))
        changed = node.get("params", {}).get(name, object()) != value
        assert self.doc.set_param(node["id"], name, value) is changed
        if changed:
            self.pushed({"op": "param", "block": self.doc.shown_block, "node": node["id"],
                         "name": name, "value": value})

    @precondition(lambda self: self.path)
    @rule(type_name=st.sampled_from(ADDED_TYPES), x=st.integers(-200, 200))
    def add_inside(self, type_name, x):
        taken = {n["id"] for n in self.shown_nodes()}
        new = self.doc.add_block(type_name, (x, 50))
        assert new not in taken
        self.pushed({"op": "add", "block": self.doc.shown_block, "node": {
            "id": new, "type": type_name, "params": {}, "pos": [float(x), 50.0]}})

    @rule()
    def undo(self):
        self.doc.undo()
        if self.done:
            self.undone.append(self.done.pop())
        self.follow_scope()

    @rule()
    def redo(self):
        self.doc.redo()
        if self.undone:
            self.done.append(self.undone.pop())
        self.follow_scope()

    def follow_scope(self) -> None:
        """An undo or redo keeps the path as far as it still exists."""
        d, block, kept = self.model(), None, []
        for inst in self.path:
            node = next((n for n in part(d, block)["nodes"] if n["id"] == inst), None)
            if node is None or node["type"] not in d.get("blocks", {}):
                break
            kept.append(inst)
            block = node["type"]
        self.path = kept

    # ---- checks ----------------------------------------------------------------------

    @invariant()
    def equals_the_replayed_history(self):
        assert norm(self.doc.to_dict()) == norm(self.model())
        assert list(self.doc.scope) == self.path
        assert self.doc.undo_stack.index() == len(self.done)

    @invariant()
    def report_equals_a_fresh_analysis(self):
        assert_report_is_fresh(self.doc)

    @invariant()
    def the_view_shows_the_shown_graph(self):
        self.view.check(self.doc)


class ShownView:
    """A stand-in for the canvas: knows only what the signals said about the graph
    shown, and rebuilds itself when the document says another graph is shown."""

    def __init__(self, doc: Document) -> None:
        self.doc = doc
        self.problems: list[str] = []
        self.rebuild()
        doc.scope_changed.connect(self.rebuild)
        doc.reset.connect(self.rebuild)
        doc.node_added.connect(self.added)
        doc.node_removed.connect(self.removed)
        doc.params_changed.connect(self.params)
        doc.edge_added.connect(lambda *k: self.edge(True, k))
        doc.edge_removed.connect(lambda *k: self.edge(False, k))

    def rebuild(self) -> None:
        g = self.doc.shown
        self.nodes = {n: json.dumps(g.params_of(n), sort_keys=True) for n in g.nodes}
        self.edges = {(e.src, e.dst, e.port) for e in g.edges()}

    def added(self, n: str) -> None:
        if n in self.nodes:
            self.problems.append(f"{n} added twice")
        self.nodes[n] = json.dumps(self.doc.shown.params_of(n), sort_keys=True)

    def removed(self, n: str) -> None:
        if n not in self.nodes:
            self.problems.append(f"{n} removed but not shown")
        self.nodes.pop(n, None)

    def params(self, n: str) -> None:
        if n not in self.nodes:
            self.problems.append(f"params of {n}, not shown")
        self.nodes[n] = json.dumps(self.doc.shown.params_of(n), sort_keys=True)

    def edge(self, on: bool, key: tuple) -> None:
        if (key in self.edges) is on:
            self.problems.append(f"edge {key} {'added' if on else 'removed'} wrongly")
        (self.edges.add if on else self.edges.discard)(key)

    def check(self, doc: Document) -> None:
        g = doc.shown
        assert self.problems == []
        assert self.nodes == {n: json.dumps(g.params_of(n), sort_keys=True) for n in g.nodes}
        assert self.edges == {(e.src, e.dst, e.port) for e in g.edges()}


def test_random_group_and_inside_edits_match_the_replayed_history(qapp):
    run_state_machine_as_test(GroupMachine, settings=settings(
        max_examples=30, stateful_step_count=10, deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much]))


def test_group_inside_a_body_carries_the_outer_arguments_and_undoes_exactly(qapp):
    doc = Document()
    doc.new_from(Graph.from_dict(nested_design()))
    original, before = doc.to_dict(), doc.report.total_params
    assert doc.enter("m1")
    inst = doc.group(["proj"], "Proj", {"k": ("proj", "kernel_size")})
    body = doc.graph.blocks["Merge"].body
    assert body.type_of(inst) == "Proj" and body.params_of(inst) == {
        "k": 1, "bias": "$bias", "width": "$width"}
    assert doc.report.errors == [] and doc.report.total_params == before
    assert set(doc.shown.nodes) >= {inst} and "proj" not in doc.shown
    added = doc.ungroup(inst)                          # and back, inside the body
    assert added == ["proj"] and doc.report.total_params == before
    doc.undo()
    doc.undo()
    assert doc.to_dict() == original and doc.scope == ("m1",)
