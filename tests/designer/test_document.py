"""The editor's model layer: every edit is one undo step that undo reverses exactly,
the signals tell the views what changed, and the analysis follows every edit."""

from __future__ import annotations

import copy
import json
import tempfile
from pathlib import Path

import hypothesis.strategies as st
import pytest
from hypothesis import HealthCheck, settings
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from designer.document import ID_PREFIX, Document
from engine import CATALOGUE, Graph, GraphFileError, analyze

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


@pytest.fixture
def doc(qapp) -> Document:
    d = Document()
    d.new_from(Graph.load(LENET))
    return d


# ---- ids --------------------------------------------------------------------------------


def test_new_ids_follow_the_block_type(qapp):
    d = Document()
    assert d.add_block("Conv2d", (0, 0)) == "conv1"
    assert d.add_block("Conv2d", (0, 0)) == "conv2"
    assert d.add_block("Activation", (0, 0)) == "relu1"
    assert d.add_block("Activation", (0, 0), {"function": "gelu"}) == "gelu1"
    assert d.add_block("Linear", (0, 0)) == "fc1"
    for type_name, prefix in ID_PREFIX.items():
        assert d.add_block(type_name, None).startswith(prefix)
    assert set(ID_PREFIX) | {"Activation"} == set(CATALOGUE)


def test_unknown_block_type_pushes_nothing(qapp):
    d = Document()
    with pytest.raises(KeyError):
        d.add_block("Conv3d", (0, 0))
    assert d.undo_stack.count() == 0 and not d.is_dirty


# ---- every edit is one exact undo step ------------------------------------------------

EDITS = {
    "add_block": lambda d: d.add_block("Dropout", (50, 60), {"p": 0.25}),
    "add_block_after": lambda d: d.add_block_after("BatchNorm", "c3"),
    "remove_node": lambda d: d.remove(["c3"], []),
    "remove_nodes_and_edge": lambda d: d.remove(["tanh1", "f6"], [("f7", "out", 0)]),
    "remove_edge": lambda d: d.remove([], [("s2", "c3")]),
    "connect_replaces": lambda d: d.connect("input", "tanh1"),
    "disconnect": lambda d: d.disconnect("c1", "tanh1", 0),
    "move": lambda d: d.move({"c1": (10, 110), "s2": (-5.5, 300)}),
    "set_param": lambda d: d.set_param("c3", "out_channels", 32),
    "set_param_default": lambda d: d.set_param("c1", "padding", None),
    "set_param_invalid": lambda d: d.set_param("c1", "kernel_size", [0, 99]),
    "paste": lambda d: d.paste(d.copy(["c1", "tanh1", "s2"]), (300, 0)),
    "duplicate": lambda d: d.duplicate(["f5", "tanh3"]),
    "apply_layout": lambda d: d.apply_layout({n: (i, 2 * i) for i, n in
                                              enumerate(d.graph.nodes)}),
}


@pytest.mark.parametrize("edit", EDITS.values(), ids=EDITS.keys())
def test_edit_is_one_step_undone_exactly_and_redone(doc, edit):
    before = norm(doc.to_dict())
    report_before = norm_report(doc.report.to_dict())
    edit(doc)
    after = norm(doc.to_dict())
    report_after = norm_report(doc.report.to_dict())
    assert after != before
    assert doc.undo_stack.count() == 1 and doc.is_dirty
    doc.undo()
    assert norm(doc.to_dict()) == before
    assert norm_report(doc.report.to_dict()) == report_before
    assert not doc.is_dirty
    doc.redo()
    assert norm(doc.to_dict()) == after
    assert norm_report(doc.report.to_dict()) == report_after


def test_remove_restores_ports_params_and_unknown_keys(qapp):
    d = Document()
    d.new_from({
        "format": "convas.graph", "version": 1, "name": "m",
        "nodes": [
            {"id": "a", "type": "Input", "params": {"channels": 2}, "pos": [0, 0]},
            {"id": "b", "type": "Conv2d", "params": {"kernel_size": [3, 5], "padding": "same"},
             "color": "red"},
            {"id": "c", "type": "Concat", "params": {}, "pos": [1.5, 2]},
        ],
        "edges": [{"from": "a", "to": "c", "port": 3},
                  {"from": "b", "to": "c", "port": 1, "note": "kept"},
                  {"from": "a", "to": "b"}],
    })
    before = norm(d.to_dict())
    d.remove(["b"], [("a", "c", 3)])
    assert [e.port for e in d.graph.edges()] == []
    d.undo()
    assert norm(d.to_dict()) == before


def test_nothing_to_do_pushes_nothing(doc):
    assert doc.remove(["nope"], [("c1", "out", 0)]) is False
    assert doc.disconnect("c1", "out", 0) is False
    assert doc.move({"c1": (0, 100)}) is False  # where it already is
    assert doc.move({"ghost": (1, 1)}) is False
    assert doc.set_param("c1", "out_channels", 6) is False  # the value it has
    assert doc.set_param("ghost", "p", 1) is False
    assert doc.paste({"nodes": [], "edges": []}) == []
    assert doc.undo_stack.count() == 0 and not doc.is_dirty


def test_set_param_true_and_one_differ(doc):
    """A bool parameter set to 1 is an error the analysis must see, not a no-op."""
    doc.set_param("c1", "bias", True)
    assert doc.set_param("c1", "bias", 1) is True
    assert doc.report.nodes["c1"].error is not None


def test_set_param_none_means_default_unless_nullable(doc):
    doc.set_param("c1", "padding", None)
    assert "padding" not in doc.graph.params_of("c1")
    doc.set_param("s2", "stride", None)  # a pool's stride: null = the kernel size
    assert doc.graph.params_of("s2")["stride"] is None
    doc.set_param("c1", "kernel_size", (3, 3))
    assert doc.graph.params_of("c1")["kernel_size"] == [3, 3]  # as a file holds it
    with pytest.raises(TypeError):
        doc.set_param("c1", "kernel_size", object())


# ---- signals ----------------------------------------------------------------------------


def test_add_block_after_signals_and_placement(doc):
    rec = Recorder(doc)
    n = doc.add_block_after("BatchNorm", "c3")
    assert n == "bn1"
    assert doc.graph.pos_of(n) == (0.0, 500.0)
    assert rec.events == [("node_added", "bn1"), ("edge_added", "c3", "bn1", 0),
                          ("analysis_changed",), ("dirty_changed", True)]
    assert doc.report.nodes["bn1"].output_shape == (16, 10, 10)


def test_add_block_after_does_not_wire_into_an_input(doc):
    n = doc.add_block_after("Input", "c1")
    assert doc.graph.inputs_of(n) == [] and doc.undo_stack.count() == 1


def test_remove_signals_wires_before_the_block_and_undo_reverses(doc):
    rec = Recorder(doc)
    doc.remove(["c3"], [])
    assert rec.of("node_removed", "edge_removed") == [
        ("edge_removed", "s2", "c3", 0), ("edge_removed", "c3", "tanh2", 0),
        ("node_removed", "c3")]
    assert rec.events[-2:] == [("analysis_changed",), ("dirty_changed", True)]
    rec.clear()
    doc.undo()
    assert rec.of("node_added", "edge_added") == [
        ("node_added", "c3"), ("edge_added", "s2", "c3", 0), ("edge_added", "c3", "tanh2", 0)]


def test_params_and_move_signals(doc):
    rec = Recorder(doc)
    doc.set_param("c1", "out_channels", 8)
    assert rec.of("params_changed", "analysis_changed") == [
        ("params_changed", "c1"), ("analysis_changed",)]
    rec.clear()
    doc.move({"c1": (5, 5), "s2": (6, 6)})
    assert rec.events == [("nodes_moved", ["c1", "s2"])]  # shapes cannot change
    doc.undo()
    assert rec.events[-1] == ("nodes_moved", ["c1", "s2"])


# ---- merging ----------------------------------------------------------------------------


def test_a_drag_is_one_step_and_the_next_drag_another(doc):
    start = norm(doc.to_dict())
    for i in range(1, 6):
        doc.move({"c1": (i, 100 + i), "tanh1": (i, 200 + i)})
    doc.end_move()
    after_first = norm(doc.to_dict())
    for i in range(1, 4):
        doc.move({"c1": (-i, 0), "tanh1": (-i, 0)})
    doc.end_move()
    assert doc.undo_stack.count() == 2
    assert doc.graph.pos_of("c1") == (-3.0, 0.0)
    doc.undo()
    assert norm(doc.to_dict()) == after_first
    assert doc.graph.pos_of("c1") == (5.0, 105.0)
    doc.undo()
    assert norm(doc.to_dict()) == start


def test_moves_of_different_blocks_do_not_merge(doc):
    doc.move({"c1": (1, 1)})
    doc.move({"c1": (2, 2), "s2": (2, 2)})
    assert doc.undo_stack.count() == 2


def test_typing_in_a_spin_box_is_one_step(doc):
    start = norm(doc.to_dict())
    for v in (1, 12, 128):
        doc.set_param("c3", "out_channels", v)
    assert doc.undo_stack.count() == 1
    doc.set_param("c3", "kernel_size", 3)  # another parameter: another step
    doc.set_param("c3", "out_channels", 64)
    assert doc.undo_stack.count() == 3
    doc.end_edit()
    doc.set_param("c3", "out_channels", 65)  # after editing finished: another step
    assert doc.undo_stack.count() == 4
    for _ in range(4):
        doc.undo()
    assert norm(doc.to_dict()) == start


def test_no_merge_across_a_save(doc, tmp_path):
    """Undo must still reach the saved state exactly (QUndoStack keeps it)."""
    doc.set_param("c3", "out_channels", 20)
    doc.save(tmp_path / "m.convas.json")
    saved = norm(doc.to_dict())
    doc.set_param("c3", "out_channels", 30)
    doc.undo()
    assert norm(doc.to_dict()) == saved and not doc.is_dirty


# ---- wires ------------------------------------------------------------------------------


def test_connect_replaces_the_wire_of_a_single_input_block_in_one_step(doc):
    rec = Recorder(doc)
    assert doc.connect("input", "tanh1") == ("input", "tanh1", 0)
    assert doc.graph.inputs_of("tanh1") == [(0, "input")]
    assert rec.of("edge_added", "edge_removed") == [
        ("edge_removed", "c1", "tanh1", 0), ("edge_added", "input", "tanh1", 0)]
    assert doc.undo_stack.count() == 1
    doc.undo()
    assert doc.graph.inputs_of("tanh1") == [(0, "c1")]


def test_connect_refuses_loops_duplicates_cycles_and_inputs(doc):
    assert doc.connect("c1", "c1") is None
    assert doc.connect("c1", "tanh1") is None  # already wired
    assert doc.connect("c1", "tanh1", 0) is None
    assert doc.connect("tanh2", "c1") is None  # would close a cycle
    assert doc.connect("c1", "input") is None  # Input takes no input
    assert doc.connect("c1", "ghost") is None
    assert doc.undo_stack.count() == 0


def test_multi_input_blocks_take_the_lowest_free_port(doc):
    add = doc.add_block("Add", (100, 300))
    assert doc.connect("s2", add) == ("s2", add, 0)
    assert doc.connect("tanh1", add) == ("tanh1", add, 1)
    assert doc.connect("s2", add) is None  # the same source again: a duplicate
    doc.disconnect("s2", add, 0)
    assert doc.connect("c1", add, None) == ("c1", add, 0)
    assert doc.connect("input", add, 1) == ("input", add, 1)  # explicit slot: replaces
    assert doc.graph.inputs_of(add) == [(0, "c1"), (1, "input")]
    assert doc.connect("input", add, -1) is None  # -1 is "any free port": a duplicate


# ---- copy and paste ---------------------------------------------------------------------


def test_copy_paste_keeps_internal_wires_with_fresh_ids(doc):
    data = doc.copy(["c3", "tanh2", "s4", "f5"])
    assert {e["from"] for e in data["edges"]} == {"c3", "tanh2"}  # s4→flatten left out
    new = doc.paste(data, (200, 10))
    assert new == ["conv1", "tanh5", "maxpool1", "fc1"]  # lenet has tanh1..tanh4
    g = doc.graph
    assert g.inputs_of(new[1]) == [(0, new[0])] and g.inputs_of(new[2]) == [(0, new[1])]
    assert g.inputs_of(new[0]) == [] and g.inputs_of(new[3]) == []
    assert g.pos_of(new[0]) == (200.0, 410.0)
    assert g.params_of(new[0]) == g.params_of("c3")
    again = doc.paste(data, (400, 10))
    assert not set(again) & set(new) and doc.undo_stack.count() == 2


def test_paste_of_garbage_raises_and_pushes_nothing(doc):
    before = norm(doc.to_dict())
    with pytest.raises(GraphFileError):
        doc.paste({"nodes": [{"id": "1x", "type": "Conv2d"}], "edges": []})
    with pytest.raises(GraphFileError):
        doc.paste({"nodes": "nope"})
    assert norm(doc.to_dict()) == before and doc.undo_stack.count() == 0


# ---- analysis ---------------------------------------------------------------------------


def test_report_follows_every_edit(doc):
    rec = Recorder(doc)
    assert doc.report.nodes["s4"].output_shape == (16, 5, 5)
    doc.set_param("c3", "out_channels", 32)
    assert doc.report.nodes["s4"].output_shape == (32, 5, 5)
    assert doc.report.nodes["f5"].params == 32 * 25 * 120 + 120
    assert ("analysis_changed",) in rec.events
    doc.undo()
    assert doc.report.nodes["s4"].output_shape == (16, 5, 5)
    doc.disconnect("s4", "flatten", 0)
    assert doc.report.nodes["flatten"].error is not None
    assert doc.report.nodes["f5"].output_shape is None


# ---- files, dirty flag and title --------------------------------------------------------


def test_dirty_flag_and_title(doc, tmp_path):
    rec = Recorder(doc)
    assert doc.title() == "LeNet-5" and not doc.is_dirty
    doc.set_param("c1", "out_channels", 7)
    assert doc.is_dirty and doc.title() == "LeNet-5 *"
    doc.undo()
    assert not doc.is_dirty and doc.title() == "LeNet-5"
    doc.redo()
    path = tmp_path / "lenet.convas.json"
    doc.save(path)
    assert doc.title() == "lenet.convas.json" and doc.path == str(path)
    assert rec.of("dirty_changed", "path_changed") == [
        ("dirty_changed", True), ("dirty_changed", False), ("dirty_changed", True),
        ("dirty_changed", False), ("path_changed", str(path))]
    doc.new()
    assert doc.title() == "Untitled" and doc.path == "" and doc.undo_stack.count() == 0
    assert rec.events[-3:] == [("reset",), ("analysis_changed",), ("path_changed", "")]


def test_save_then_open_is_the_identity(doc, tmp_path):
    doc.add_block_after("Dropout", "f5")
    doc.set_param("c1", "kernel_size", [3, 5])
    doc.move({"c1": (12.5, -3)})
    doc.graph.training["lr"] = 0.5  # (training settings are not edited here yet)
    path = tmp_path / "m.convas.json"
    doc.save(path)
    saved = doc.to_dict()
    other = Document()
    rec = Recorder(other)
    other.open(path)
    assert norm(other.to_dict()) == norm(saved)
    assert other.path == str(path) and not other.is_dirty
    assert ("reset",) in rec.events and ("path_changed", str(path)) in rec.events
    assert norm(Graph.load(path).to_dict()) == norm(saved)


def test_save_without_a_file_name_asks_for_one(doc):
    with pytest.raises(ValueError):
        doc.save()


@pytest.mark.parametrize("text", ["{not json", '{"format": "convas.graph", "version": 99}',
                                  '{"format": "convas.graph", "version": 1, "nodes": '
                                  '[{"id": "a", "type": "Nope"}]}'])
def test_open_of_a_broken_file_leaves_the_document_unchanged(doc, tmp_path, text):
    doc.set_param("c1", "out_channels", 3)
    before, count = norm(doc.to_dict()), doc.undo_stack.count()
    rec = Recorder(doc)
    bad = tmp_path / "bad.convas.json"
    bad.write_text(text)
    with pytest.raises(GraphFileError):
        doc.open(bad)
    with pytest.raises(GraphFileError):
        doc.open(tmp_path / "missing.convas.json")
    assert norm(doc.to_dict()) == before and doc.undo_stack.count() == count
    assert doc.is_dirty and doc.path == "" and rec.events == []


def test_report_equals_a_fresh_analysis_after_undo(doc):
    doc.remove(["s2"], [])
    doc.connect("tanh1", "c3")
    doc.set_param("c1", "out_channels", 9)
    doc.undo()
    doc.undo()
    fresh = analyze(Graph.from_dict(doc.to_dict()))
    assert norm_report(doc.report.to_dict()) == norm_report(fresh.to_dict())


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
        return ID_PREFIX[type_name]
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
        fresh = analyze(Graph.from_dict(self.doc.to_dict()))
        assert norm_report(self.doc.report.to_dict()) == norm_report(fresh.to_dict())

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
