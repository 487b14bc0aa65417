"""Random sequences of edits, undos and redos, checked after every step against an
independent replay of the effective history (and save → load identity at the end)."""

from __future__ import annotations

import copy
import json
import tempfile
from pathlib import Path

import hypothesis.strategies as st
from doc_helpers import LENET, assert_report_is_fresh, norm
from hypothesis import HealthCheck, settings
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from designer.document import Document
from engine import CATALOGUE, Graph

# ---- random edit sequences against a model ---------------------------------------------
#
# The model is a plain list of undo steps, each a list of edit records on SPEC §1 dicts,
# written independently of the Document: replaying the steps that are currently done
# onto the initial dict must give the document's graph after every edit, undo and redo.

SINGLE_INPUT = {t for t, s in CATALOGUE.items() if s.max_inputs == 1}
NO_INPUT = {t for t, s in CATALOGUE.items() if s.max_inputs == 0}
VALUES = st.one_of(
    st.none(), st.booleans(), st.integers(-3, 300), st.floats(-1, 4, allow_nan=False),
    st.sampled_from(["same", "valid", "relu", "tanh", "softmax", "nearest", "bilinear", "x"]),
    st.lists(st.integers(0, 7), min_size=1, max_size=3))
POS = st.tuples(st.integers(-300, 300), st.integers(-300, 1500))


def edge_key(e: dict) -> tuple[str, str, int]:
    return (e["from"], e["to"], e.get("port", 0))


def edge_dict(src: str, dst: str, port: int) -> dict:
    return {"from": src, "to": dst, **({"port": port} if port else {})}


def replay_op(d: dict, op: dict) -> None:
    """Apply one edit record to a graph dict, the way the specification says."""
    nodes = {n["id"]: n for n in d["nodes"]}
    kind = op["op"]
    if kind == "add":
        d["nodes"] += copy.deepcopy(op["nodes"])
        d["edges"] += [edge_dict(*k) for k in op["edges"]]
    elif kind == "remove":
        gone = set(op["nodes"])
        d["nodes"] = [n for n in d["nodes"] if n["id"] not in gone]
        d["edges"] = [e for e in d["edges"] if e["from"] not in gone
                      and e["to"] not in gone and edge_key(e) not in op["edges"]]
    elif kind == "connect":
        src, dst, port = op["edge"]
        d["edges"] = [e for e in d["edges"] if (e["to"], e.get("port", 0)) != (dst, port)]
        d["edges"].append(edge_dict(src, dst, port))
    elif kind == "disconnect":
        d["edges"] = [e for e in d["edges"] if edge_key(e) != op["edge"]]
    elif kind == "move":
        for n, pos in op["pos"].items():
            nodes[n]["pos"] = list(pos)
    elif kind == "param":
        node = nodes[op["node"]]
        spec = CATALOGUE[node["type"]].param_index.get(op["name"])
        if op["value"] is None and not (spec and spec.nullable):
            node["params"].pop(op["name"], None)
        else:
            node["params"][op["name"]] = copy.deepcopy(op["value"])


def expected_prefix(type_name: str, params: dict) -> str:
    if type_name != "Activation":
        return CATALOGUE[type_name].prefix()
    fn = params.get("function", "relu")
    return fn if isinstance(fn, str) and fn.isidentifier() and fn.isascii() else "act"


def has_path(d: dict, a: str, b: str) -> bool:
    seen, todo = set(), [a]
    while todo:
        n = todo.pop()
        if n == b:
            return True
        if n not in seen:
            seen.add(n)
            todo += [e["to"] for e in d["edges"] if e["from"] == n]
    return False


class EditMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.doc = Document()
        self.doc.new_from(Graph.load(LENET))
        self.initial = self.doc.to_dict()
        self.done: list[dict] = []  # steps: {"ops": [...], "key": ..., "seal": int}
        self.undone: list[dict] = []
        self.clean = 0  # the step count at which the document was saved
        self.seal = 0
        self.tmp = tempfile.TemporaryDirectory()
        self.saves = 0
        self.view = SignalView(self.doc)
        self.last: dict[str, list[str]] = {}

    def teardown(self) -> None:
        path = Path(self.tmp.name) / "final.convas.json"
        self.doc.save(path)
        assert norm(Graph.load(path).to_dict()) == norm(self.doc.to_dict())
        other = Document()
        other.open(path)
        assert norm(other.to_dict()) == norm(self.doc.to_dict()) and not other.is_dirty
        self.tmp.cleanup()

    # the model ---------------------------------------------------------------------

    def model(self) -> dict:
        d = copy.deepcopy(self.initial)
        for step in self.done:
            for op in step["ops"]:
                replay_op(d, op)
        return d

    def pushed(self, ops: list[dict], key: tuple | None = None) -> None:
        self.undone.clear()
        if self.clean > len(self.done):
            self.clean = -1  # the saved state was in the discarded redo steps
        top = self.done[-1] if self.done else None
        if (key is not None and top is not None and top["key"] == key
                and top["seal"] == self.seal and self.clean != len(self.done)):
            top["ops"] += ops
        else:
            self.done.append({"ops": ops, "key": key, "seal": self.seal})

    def pick(self, data, min_size: int = 1) -> list[str]:
        ids = sorted(self.doc.graph.nodes)
        return data.draw(st.lists(st.sampled_from(ids), min_size=min_size, unique=True))

    def again(self, data, what: str) -> list[str] | None:
        """Often the same blocks as the last move / parameter change: a drag or typing."""
        last = self.last.get(what)
        if last and last[0] in self.doc.graph and all(n in self.doc.graph for n in last[1:]
                                                      if what == "move"):
            return last if data.draw(st.integers(0, 3)) else None
        return None

    def fresh(self, new: list[str], d: dict) -> None:
        old = {n["id"] for n in d["nodes"]}
        assert len(set(new)) == len(new) and not set(new) & old

    # edits ---------------------------------------------------------------------------

    @rule(type_name=st.sampled_from(sorted(CATALOGUE)), pos=POS)
    def add_block(self, type_name, pos):
        d = self.model()
        n = self.doc.add_block(type_name, pos)
        self.fresh([n], d)
        self.pushed([{"op": "add", "edges": [],
                      "nodes": [{"id": n, "type": type_name, "params": {}, "pos": pos}]}])

    @precondition(lambda self: len(self.doc.graph))
    @rule(type_name=st.sampled_from(sorted(CATALOGUE)), data=st.data())
    def add_block_after(self, type_name, data):
        after = self.pick(data)[0]
        d = self.model()
        x, y = next(n for n in d["nodes"] if n["id"] == after)["pos"]
        n = self.doc.add_block_after(type_name, after)
        self.fresh([n], d)
        wires = [] if type_name in NO_INPUT else [(after, n, 0)]
        self.pushed([{"op": "add", "edges": wires,
                      "nodes": [{"id": n, "type": type_name, "params": {}, "pos": [x, y + 100]}]}])

    @rule(data=st.data())
    def remove(self, data):
        d = self.model()
        nodes = self.pick(data, 0) if d["nodes"] else []
        keys = sorted(edge_key(e) for e in d["edges"])
        edges = data.draw(st.lists(st.sampled_from(keys), unique=True)) if keys else []
        edges.append(("ghost", "c1", 0))
        expect = bool(nodes) or any(k for k in edges if k[0] != "ghost")
        assert self.doc.remove(nodes + ["ghost"], edges) is expect
        if expect:
            self.pushed([{"op": "remove", "nodes": nodes, "edges": edges}])

    @precondition(lambda self: len(self.doc.graph))
    @rule(data=st.data(), port=st.one_of(st.none(), st.integers(0, 2)))
    def connect(self, data, port):
        src = self.pick(data)[0]
        dst = self.pick(data)[0]
        d = self.model()
        dst_type = next(n["type"] for n in d["nodes"] if n["id"] == dst)
        ins = [edge_key(e) for e in d["edges"] if e["to"] == dst]
        want = port
        if port is None:
            want = 0 if dst_type in SINGLE_INPUT else min(
                p for p in range(len(ins) + 1) if p not in {k[2] for k in ins})
        refused = (src == dst or dst_type in NO_INPUT or has_path(d, dst, src)
                   or (src, dst, want) in ins
                   or (port is None and any(k[0] == src for k in ins)))
        got = self.doc.connect(src, dst, port)
        if refused:
            assert got is None
        else:
            assert got == (src, dst, want)
            self.pushed([{"op": "connect", "edge": got}])

    @rule(data=st.data())
    def disconnect(self, data):
        keys = sorted(edge_key(e) for e in self.model()["edges"])
        key = data.draw(st.sampled_from(keys)) if keys else ("c1", "ghost", 0)
        if data.draw(st.booleans()):
            key = (key[0], key[1], key[2] + 5)  # not a wire
        ok = self.doc.disconnect(*key)
        assert ok is (key in keys)
        if ok:
            self.pushed([{"op": "disconnect", "edge": key}])

    @precondition(lambda self: len(self.doc.graph))
    @rule(data=st.data(), drags=st.lists(st.lists(st.one_of(POS, st.none()), min_size=1,
                                                  max_size=3), min_size=1, max_size=2),
          release=st.booleans())
    def drag(self, data, drags, release):
        """One or two drags of the same blocks, each a few moves (None: back where they
        are), a mouse release between them and maybe after the last."""
        ids = self.again(data, "move") or self.pick(data)
        self.last["move"] = ids
        for i, steps in enumerate(drags):
            if i:
                self.end_move()
            for pos in steps:
                where = {n["id"]: n.get("pos") for n in self.model()["nodes"]}
                new = {n: (where[n] if pos is None and where[n] else pos or (0, 0))
                       for n in ids}
                moved = any(where[n] is None
                            or list(map(float, where[n])) != list(map(float, p))
                            for n, p in new.items())
                assert self.doc.move(new) is moved
                if moved:
                    self.pushed([{"op": "move", "pos": new}], ("move", frozenset(ids)))
        if release:
            self.end_move()

    @rule()
    def end_move(self):
        self.doc.end_move()
        self.seal += 1

    @precondition(lambda self: len(self.doc.graph))
    @rule(data=st.data(), bursts=st.lists(st.lists(VALUES, min_size=1, max_size=3),
                                          min_size=1, max_size=2), finished=st.booleans())
    def typing(self, data, bursts, finished):
        """Values for one parameter (spin-box typing, valid or not) in one or two bursts
        with "editing finished" between them."""
        node, name = self.again(data, "param") or (self.pick(data)[0], None)
        entry = next(n for n in self.model()["nodes"] if n["id"] == node)
        names = [p.name for p in CATALOGUE[entry["type"]].params] + ["bogus"]
        name = name or data.draw(st.sampled_from(names))
        self.last["param"] = [node, name]
        for i, values in enumerate(bursts):
            if i:
                self.end_move()
            for value in values:
                d = self.model()
                entry = next(n for n in d["nodes"] if n["id"] == node)
                op = {"op": "param", "node": node, "name": name, "value": value}
                before = json.dumps(entry["params"], sort_keys=True)
                replay_op(d, op)
                changed = json.dumps(entry["params"], sort_keys=True) != before
                assert self.doc.set_param(node, name, value) is changed
                if changed:
                    self.pushed([op], ("param", node, name))
        if finished:
            self.end_move()

    @precondition(lambda self: len(self.doc.graph))
    @rule(data=st.data(), offset=POS, duplicate=st.booleans())
    def paste(self, data, offset, duplicate):
        ids = set(self.pick(data))
        d = self.model()
        copied = self.doc.copy(ids)
        nodes = [n for n in d["nodes"] if n["id"] in ids]
        assert norm(copied) == norm({
            "format": d["format"], "version": d["version"], "name": d["name"], "nodes": nodes,
            "edges": [e for e in d["edges"] if e["from"] in ids and e["to"] in ids]})
        new = self.doc.duplicate(ids) if duplicate else self.doc.paste(copied, offset)
        if duplicate:
            offset = (40, 40)
        self.fresh(new, d)
        ren = dict(zip([n["id"] for n in copied["nodes"]], new, strict=True))
        added = [{**copy.deepcopy(n), "id": ren[n["id"]],
                  "pos": [n["pos"][0] + offset[0], n["pos"][1] + offset[1]]}
                 for n in copied["nodes"]]
        for a in added:
            assert a["id"].rstrip("0123456789") == expected_prefix(a["type"], a["params"])
        wires = [(ren[e["from"]], ren[e["to"]], e.get("port", 0)) for e in copied["edges"]]
        self.pushed([{"op": "add", "nodes": added, "edges": wires}])

    @precondition(lambda self: len(self.doc.graph))
    @rule(data=st.data())
    def layout(self, data):
        d = self.model()
        new = {n["id"]: data.draw(POS) for n in d["nodes"]}
        moved = any(list(map(float, n.get("pos") or [])) != list(map(float, new[n["id"]]))
                    for n in d["nodes"])
        assert self.doc.apply_layout(new) is moved
        if moved:
            self.pushed([{"op": "move", "pos": new}])

    @rule()
    def undo(self):
        self.doc.undo()
        if self.done:
            self.undone.append(self.done.pop())

    @rule()
    def redo(self):
        self.doc.redo()
        if self.undone:
            self.done.append(self.undone.pop())

    @rule()
    def save(self):
        self.saves += 1
        self.doc.save(Path(self.tmp.name) / f"s{self.saves}.convas.json")
        self.clean = len(self.done)

    # checks --------------------------------------------------------------------------

    @invariant()
    def equals_the_replayed_history(self):
        assert norm(self.doc.to_dict()) == norm(self.model())

    @invariant()
    def last_step_undoes_and_redoes_exactly(self):
        if not self.done:
            return
        now = norm(self.doc.to_dict())
        top = self.done.pop()
        self.doc.undo()
        assert norm(self.doc.to_dict()) == norm(self.model())
        self.done.append(top)
        self.doc.redo()
        assert norm(self.doc.to_dict()) == now

    @invariant()
    def report_equals_a_fresh_analysis(self):
        assert_report_is_fresh(self.doc)

    @invariant()
    def one_undo_step_per_edit_and_dirty_flag(self):
        assert self.doc.undo_stack.index() == len(self.done)
        assert self.doc.undo_stack.count() == len(self.done) + len(self.undone)
        assert self.doc.is_dirty is (len(self.done) != self.clean)
        assert self.doc.title().endswith(" *") is self.doc.is_dirty

    @invariant()
    def signals_kept_a_view_in_step(self):
        self.view.check(self.doc)


class SignalView:
    """A stand-in for the canvas that knows only what the signals told it."""

    def __init__(self, doc: Document) -> None:
        self.nodes: dict[str, tuple] = {}
        self.edges: set[tuple[str, str, int]] = set()
        self.problems: list[str] = []
        g = doc.graph
        for n in g.nodes:
            self.nodes[n] = (json.dumps(g.params_of(n), sort_keys=True), g.pos_of(n))
        self.edges = {(e.src, e.dst, e.port) for e in g.edges()}

        def added(n: str) -> None:
            if n in self.nodes:
                self.problems.append(f"{n} added twice")
            self.nodes[n] = (json.dumps(doc.graph.params_of(n), sort_keys=True),
                             doc.graph.pos_of(n))

        def removed(n: str) -> None:
            if any(n in k[:2] for k in self.edges):
                self.problems.append(f"{n} removed before its wires")
            self.nodes.pop(n)

        def params(n: str) -> None:
            self.nodes[n] = (json.dumps(doc.graph.params_of(n), sort_keys=True),
                             self.nodes[n][1])

        def moved(ids: list) -> None:
            for n in ids:
                self.nodes[n] = (self.nodes[n][0], doc.graph.pos_of(n))

        def edge(on: bool, *key) -> None:
            if (key in self.edges) is on or not {key[0], key[1]} <= set(self.nodes):
                self.problems.append(f"edge {key} {'added' if on else 'removed'} wrongly")
            (self.edges.add if on else self.edges.discard)(key)

        doc.node_added.connect(added)
        doc.node_removed.connect(removed)
        doc.params_changed.connect(params)
        doc.nodes_moved.connect(moved)
        doc.edge_added.connect(lambda *k: edge(True, *k))
        doc.edge_removed.connect(lambda *k: edge(False, *k))

    def check(self, doc: Document) -> None:
        g = doc.graph
        assert self.problems == []
        assert self.nodes == {n: (json.dumps(g.params_of(n), sort_keys=True), g.pos_of(n))
                              for n in g.nodes}
        assert self.edges == {(e.src, e.dst, e.port) for e in g.edges()}


def test_random_edit_sequences_match_the_replayed_history(qapp):
    run_state_machine_as_test(EditMachine, settings=settings(
        max_examples=50, stateful_step_count=20, deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much]))
