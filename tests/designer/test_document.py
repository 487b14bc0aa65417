"""The editor's model layer: every edit is one undo step that undo reverses exactly,
the signals tell the views what changed, and the analysis follows every edit."""

from __future__ import annotations

import pytest
from doc_helpers import LENET, Recorder, norm, norm_report

from designer.document import Document
from engine import CATALOGUE, Graph, GraphFileError, analyze


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
    assert d.add_block("ConvTranspose2d", (0, 0)) == "deconv1"
    for type_name, spec in CATALOGUE.items():  # every block's own prefix (engine/blocks)
        assert d.add_block(type_name, None).startswith(spec.prefix())


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


def test_moving_a_wire_end_is_one_undo_step(doc):
    add = doc.add_block("Add", (100, 300))
    doc.connect("s2", add)
    before = norm(doc.to_dict())
    steps = doc.undo_stack.count()
    assert doc.rewire("s2", add, 0, add, 1)                 # to the Add's other slot
    assert doc.graph.inputs_of(add) == [(1, "s2")]
    assert doc.undo_stack.count() == steps + 1
    assert doc.undo_stack.undoText() == f"Move wire s2 → {add}"
    doc.undo()
    assert norm(doc.to_dict()) == before
    doc.redo()
    assert doc.graph.inputs_of(add) == [(1, "s2")]


def test_a_refused_wire_move_leaves_the_wire_where_it_was(doc):
    before, steps = norm(doc.to_dict()), doc.undo_stack.count()
    assert not doc.rewire("c1", "tanh1", 0, "input", 0)     # Input takes no input
    assert not doc.rewire("c1", "tanh1", 0, "c1", 0)        # a loop
    assert not doc.rewire("tanh1", "s2", 0, "c1", 0)        # would close a cycle
    assert not doc.rewire("c1", "tanh1", 0, "tanh1", 0)     # where it already is
    assert not doc.rewire("ghost", "tanh1", 0, "s2", 0)     # no such wire
    assert norm(doc.to_dict()) == before and doc.undo_stack.count() == steps


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


def test_dataset_options_are_a_training_edit_like_any_other(doc, tmp_path):
    assert doc.set_training({"dataset": "shapes-seg", "dataset_options": {"count": 120}})
    assert doc.graph.training["dataset_options"] == {"count": 120}
    doc.save(tmp_path / "d.convas.json")
    assert Graph.load(tmp_path / "d.convas.json").training["dataset_options"] == {"count": 120}
    doc.undo_stack.undo()
    assert "dataset_options" not in doc.graph.training
    with pytest.raises(TypeError):
        doc.set_training({"dataset_options": {1: object()}})
