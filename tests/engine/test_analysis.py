"""Analysis (SPEC §3): per-node results and errors that never stop the rest."""

from __future__ import annotations

import json

import pytest
from graph_builders import build
from hypothesis import given, settings
from hypothesis import strategies as st

from engine import Graph, analyze
from engine.analysis import Report


def chain(*blocks: tuple[str, str, dict], input_shape=(3, 16, 16)) -> Graph:
    c, h, w = input_shape
    nodes = [("x", "Input", {"channels": c, "height": h, "width": w}), *blocks,
             ("out", "Output", {})]
    ids = [n[0] for n in nodes]
    return build(nodes, list(zip(ids, ids[1:], strict=False)))


def error_of(report: Report, node: str) -> str:
    info = report.nodes[node]
    assert info.error is not None, f"{node} has no error"
    assert info.error.node == node
    assert info.error in report.errors
    return info.error.message


def assert_fully_analysed(report: Report, node: str) -> None:
    info = report.nodes[node]
    assert info.error is None
    assert info.output_shape is not None


# ---- parameters ------------------------------------------------------------------------


def test_unknown_parameter_names_node_and_parameter():
    g = chain(("c1", "Conv2d", {"out_channels": 8, "kernal_size": 3}),
              ("c2", "Conv2d", {"out_channels": 4}))
    r = analyze(g)
    err = r.nodes["c1"].error
    assert err.param == "kernal_size"
    assert "kernal_size" in err.message and "kernel_size" in err.message  # lists the real ones
    assert "'c1'" in str(err) and "'kernal_size'" in str(err)
    assert r.nodes["c2"].output_shape is None and r.nodes["c2"].error is None
    assert_fully_analysed(r, "x")


@pytest.mark.parametrize("param, value, words", [
    ("kernel_size", 0, "below the minimum 1"),
    ("kernel_size", [3, 300], "above the maximum 255"),
    ("out_channels", 2.5, "not an integer"),
    ("out_channels", "16", "not an integer"),
    ("bias", "yes", "not true or false"),
    ("padding", "full", "not an integer"),
    ("stride", [1, 2, 3], "pair"),
])
def test_bad_parameter_value_names_node_and_parameter(param, value, words):
    g = chain(("c1", "Conv2d", {param: value}))
    r = analyze(g)
    err = r.nodes["c1"].error
    assert err.param == param
    assert f"'{param}'" in err.message
    assert words in err.message
    assert "'c1'" in str(err)


def test_several_bad_parameters_are_all_reported():
    g = chain(("p", "MaxPool2d", {"kernel_size": 0, "ceil_mode": 1, "size": 2}))
    msg = error_of(analyze(g), "p")
    assert "kernel_size" in msg and "ceil_mode" in msg and "'size'" in msg


def test_float_parameters_accept_ints_and_refuse_out_of_range():
    r = analyze(chain(("d", "Dropout", {"p": 1}), ("bn", "BatchNorm", {"momentum": 0})))
    assert r.ok, r.errors
    assert r.nodes["d"].resolved["p"] == 1.0
    r = analyze(chain(("d", "Dropout", {"p": 1.5})))
    assert "above the maximum 1" in error_of(r, "d")


# ---- wiring ------------------------------------------------------------------------------


def test_cycle_marks_every_node_in_it_and_analyses_the_rest():
    g = build(
        [("x", "Input", {}), ("a", "Conv2d", {}), ("b", "Activation", {}), ("c", "Add", {}),
         ("d", "Conv2d", {}), ("out", "Output", {}), ("side", "Conv2d", {"out_channels": 5})],
        [("x", "a"), ("a", "b"), ("b", "c"), ("x", "c", 1), ("c", "a", 1), ("c", "d"),
         ("d", "out"), ("x", "side")],
    )
    r = analyze(g)
    for n in ("a", "b", "c"):
        msg = error_of(r, n)
        assert "cycle" in msg
        assert "remove one of these wires" in msg
    assert r.nodes["d"].output_shape is None and r.nodes["d"].error is None
    assert_fully_analysed(r, "side")
    assert r.nodes["side"].output_shape == (5, 32, 32)
    assert r.nodes["side"].params == 3 * 5 * 9 + 5


def test_self_loop_is_a_cycle():
    g = chain(("a", "Activation", {}))
    g.add_edge("a", "a", 1)
    assert "cycle" in error_of(analyze(g), "a")


def test_two_edges_into_one_port():
    g = build(
        [("x", "Input", {}), ("a", "Conv2d", {}), ("b", "Conv2d", {}), ("add", "Add", {}),
         ("out", "Output", {})],
        [("x", "a"), ("x", "b"), ("a", "add", 0), ("b", "add", 0), ("add", "out")],
    )
    msg = error_of(analyze(g), "add")
    assert "a and b are both wired into input port 0" in msg


def test_wrong_number_of_inputs():
    g = build([("x", "Input", {}), ("add", "Add", {}), ("c", "Conv2d", {}),
               ("out", "Output", {})],
              [("x", "add"), ("add", "out"), ("x", "c")])
    assert "needs 2 or more inputs" in error_of(analyze(g), "add")
    g = build([("x", "Input", {}), ("y", "Input", {}), ("c", "Conv2d", {}),
               ("out", "Output", {})],
              [("x", "c"), ("y", "c", 1), ("c", "out")])
    assert "merge them first with Add or Concat" in error_of(analyze(g), "c")
    g = build([("x", "Input", {}), ("c", "Conv2d", {}), ("out", "Output", {})],
              [("x", "c", 1), ("c", "out")])
    assert "port 1" in error_of(analyze(g), "c")
    g = build([("x", "Input", {}), ("c", "Conv2d", {}), ("out", "Output", {})],
              [("c", "out")])
    assert "no input" in error_of(analyze(g), "c")


def test_missing_input_and_output():
    r = analyze(build([("c", "Conv2d", {})], []))
    messages = [e.message for e in r.errors if e.node is None]
    assert any("no Input" in m for m in messages)
    assert any("no Output" in m for m in messages)
    assert not r.ok


def test_two_outputs():
    g = chain(("c", "Conv2d", {}))
    g.add_node("out2", "Output")
    g.add_edge("c", "out2")
    r = analyze(g)
    assert sum("exactly one Output" in e.message for e in r.errors) == 1


def test_unconnected_node_is_a_warning_not_an_error():
    g = chain(("c", "Conv2d", {}))
    g.add_node("stray", "Conv2d")
    g.add_edge("x", "stray")
    r = analyze(g)
    assert r.ok
    assert [w.node for w in r.warnings] == ["stray"]
    assert_fully_analysed(r, "stray")


# ---- shape rules in context -----------------------------------------------------------------


def test_linear_after_image_says_insert_flatten():
    r = analyze(chain(("c", "Conv2d", {}), ("fc", "Linear", {})))
    assert "insert Flatten or GlobalAvgPool" in error_of(r, "fc")


def add_graph(first: tuple, second: tuple) -> Graph:
    return build(
        [("x", "Input", {"channels": first[0], "height": first[1], "width": first[1]}),
         ("y", "Input", {"channels": second[0], "height": second[1], "width": second[1]}),
         ("add", "Add", {}), ("out", "Output", {})],
        [("x", "add", 0), ("y", "add", 1), ("add", "out")],
    )


@pytest.mark.parametrize("first, second", [((64, 16), (128, 8)), ((128, 8), (64, 16))])
def test_add_of_different_shapes_gives_the_spec_message(first, second):
    msg = error_of(analyze(add_graph(first, second)), "add")
    assert msg.startswith("shapes [64,16,16] and [128,8,8] differ: use a 1×1 Conv2d "
                          "projection with stride 2 on the shortcut"), msg


def test_add_of_different_channels_only():
    msg = error_of(analyze(add_graph((64, 8), (32, 8))), "add")
    assert "1×1 Conv2d projection on the shortcut" in msg
    assert "stride" not in msg


def test_same_with_even_kernel_says_so():
    msg = error_of(analyze(chain(("c", "Conv2d", {"kernel_size": 4}))), "c")
    assert '"same"' in msg and "odd kernel" in msg
    msg = error_of(analyze(chain(("c", "Conv2d", {"kernel_size": [3, 2]}))), "c")
    assert "width kernel is 2" in msg


def test_kernel_larger_than_input():
    r = analyze(chain(("c", "Conv2d", {"kernel_size": 7, "padding": "valid"}),
                      input_shape=(1, 5, 5)))
    assert "larger than" in error_of(r, "c")
    r = analyze(chain(("p", "MaxPool2d", {"kernel_size": 4}), input_shape=(1, 3, 3)))
    assert "larger than" in error_of(r, "p")


def test_error_downstream_has_no_shape_and_no_error_while_other_branch_is_analysed():
    g = build(
        [("x", "Input", {"channels": 3, "height": 8, "width": 8}),
         ("bad", "Conv2d", {"kernel_size": 9, "padding": "valid"}),
         ("after_bad", "Activation", {}), ("flat_bad", "Flatten", {}),
         ("good", "Conv2d", {"out_channels": 4}), ("pool", "MaxPool2d", {}),
         ("flat", "Flatten", {}), ("fc", "Linear", {"out_features": 3}),
         ("out", "Output", {})],
        [("x", "bad"), ("bad", "after_bad"), ("after_bad", "flat_bad"),
         ("x", "good"), ("good", "pool"), ("pool", "flat"), ("flat", "fc"), ("fc", "out")],
    )
    r = analyze(g)
    assert [e.node for e in r.errors] == ["bad"]
    for n in ("after_bad", "flat_bad"):
        info = r.nodes[n]
        assert info.output_shape is None and info.error is None
        assert info.params == 0 and info.macs == 0 and info.receptive_field is None
    assert r.nodes["pool"].output_shape == (4, 4, 4)
    assert r.nodes["fc"].output_shape == (3,)
    assert r.nodes["fc"].params == 64 * 3 + 3
    assert r.output_shape == (3,)


# ---- counts and receptive fields of a known network ------------------------------------


def lenet5() -> Graph:
    valid = {"padding": "valid"}
    return chain(
        ("c1", "Conv2d", {"out_channels": 6, "kernel_size": 5, **valid}),
        ("a1", "Activation", {"function": "tanh"}),
        ("s2", "AvgPool2d", {}),
        ("c3", "Conv2d", {"out_channels": 16, "kernel_size": 5, **valid}),
        ("a3", "Activation", {"function": "tanh"}),
        ("s4", "AvgPool2d", {}),
        ("flat", "Flatten", {}),
        ("f5", "Linear", {"out_features": 120}),
        ("f6", "Linear", {"out_features": 84}),
        ("f7", "Linear", {"out_features": 10}),
        input_shape=(1, 32, 32),
    )


def test_lenet5_receptive_fields_and_totals():
    r = analyze(lenet5())
    assert r.ok, r.errors
    rf = {n: (r.nodes[n].receptive_field, r.nodes[n].jump) for n in ("c1", "s2", "c3", "s4")}
    assert rf == {"c1": (5, 1), "s2": (6, 2), "c3": (14, 2), "s4": (16, 4)}
    assert r.nodes["a3"].receptive_field == 14  # element-wise blocks keep it
    assert r.nodes["flat"].receptive_field is None  # no spatial output
    assert r.total_params == 61706
    assert r.total_macs == 416520
    assert r.nodes["s4"].output_shape == (16, 5, 5)


def test_report_to_dict_matches_spec_json():
    d = analyze(lenet5()).to_dict()
    json.dumps(d)  # plain JSON types only
    for key in ("name", "nodes", "total_params", "trainable_params", "total_macs", "errors"):
        assert key in d
    assert d["total_params"] == d["trainable_params"] == 61706
    assert d["total_macs"] == 416520
    assert d["errors"] == []
    c1 = next(n for n in d["nodes"] if n["id"] == "c1")
    assert c1 == {"id": "c1", "type": "Conv2d", "output_shape": [6, 28, 28], "params": 156,
                  "macs": 117600, "activations": 4704, "receptive_field": 5, "jump": 1,
                  "error": None}
    flat = next(n for n in d["nodes"] if n["id"] == "flat")
    assert flat["output_shape"] == [400] and flat["receptive_field"] is None


def test_report_to_dict_with_errors():
    g = lenet5()
    g.set_param("c3", "kernel_size", 40)
    d = analyze(g).to_dict()
    json.dumps(d)
    assert [e["node"] for e in d["errors"]] == ["c3"]
    assert set(d["errors"][0]) == {"node", "message"}
    f5 = next(n for n in d["nodes"] if n["id"] == "f5")
    assert f5["output_shape"] is None and f5["error"] is None
    c3 = next(n for n in d["nodes"] if n["id"] == "c3")
    assert c3["error"] == d["errors"][0]["message"]
    errors = analyze(build([("c", "Conv2d", {})], [])).to_dict()["errors"]
    assert sorted(str(e["node"]) for e in errors) == ["None", "None", "c"]  # no Input/Output


def test_receptive_field_takes_the_largest_branch():
    g = build(
        [("x", "Input", {}), ("a", "Conv2d", {"kernel_size": 7}),
         ("b", "Conv2d", {"kernel_size": 3}), ("cat", "Concat", {}),
         ("c", "Conv2d", {"kernel_size": 3}), ("out", "Output", {})],
        [("x", "a"), ("x", "b"), ("b", "cat", 0), ("a", "cat", 1), ("cat", "c"), ("c", "out")],
    )
    r = analyze(g)
    assert r.nodes["cat"].receptive_field == 7
    assert r.nodes["c"].receptive_field == 9


def test_activation_counts():
    r = analyze(lenet5())
    assert r.nodes["c1"].activations == 6 * 28 * 28
    assert r.nodes["f7"].activations == 10
    assert r.total_activations == sum(i.activations for i in r.nodes.values())


# ---- the incremental memo ----------------------------------------------------------------


def edit_graph() -> Graph:
    return build(
        [("x", "Input", {"channels": 3, "height": 16, "width": 16}),
         ("c1", "Conv2d", {"out_channels": 8}),
         ("r1", "Activation", {}),
         ("p1", "MaxPool2d", {}),
         ("c2", "Conv2d", {"out_channels": 8}),
         ("sc", "Conv2d", {"out_channels": 8, "kernel_size": 1, "stride": 2}),
         ("add", "Add", {}),
         ("cat", "Concat", {}),
         ("gap", "GlobalAvgPool", {}),
         ("fc", "Linear", {"out_features": 5}),
         ("out", "Output", {})],
        [("x", "c1"), ("c1", "r1"), ("r1", "p1"), ("p1", "c2"), ("x", "sc"),
         ("c2", "add", 0), ("sc", "add", 1), ("add", "cat", 0), ("p1", "cat", 1),
         ("cat", "gap"), ("gap", "fc"), ("fc", "out")],
    )


VALUES = {
    "Input": {"channels": [1, 3, 8], "height": [16, 15, 4, 0], "width": [16, 9]},
    "Conv2d": {"out_channels": [4, 8, 0], "kernel_size": [1, 3, 4, 9, [3, 1]],
               "stride": [1, 2], "padding": ["same", "valid", 1], "groups": [1, 2],
               "dilation": [1, 2], "wrong_name": [1]},
    "Activation": {"function": ["relu", "tanh", "nope"]},
    "MaxPool2d": {"kernel_size": [2, 3, 20], "stride": [None, 1], "ceil_mode": [True, False]},
    "Linear": {"out_features": [5, 10, -1]},
    "Add": {"x": [1]},
}


@st.composite
def edits(draw):
    kind = draw(st.sampled_from(["param", "param", "param", "reset", "remove_edge",
                                 "add_edge", "add_edge", "pos", "add_node", "remove_node"]))
    return kind, draw(st.integers(0, 10**6)), draw(st.integers(0, 10**6)), draw(
        st.integers(0, 2))


def apply_edit(g: Graph, edit) -> None:
    kind, a, b, port = edit
    nodes = sorted(g.nodes)
    if not nodes:
        return
    node = nodes[a % len(nodes)]
    if kind == "param":
        choices = VALUES.get(g.type_of(node))
        if not choices:
            return
        name = sorted(choices)[b % len(choices)]
        vals = choices[name]
        g.set_param(node, name, vals[(a // 7) % len(vals)])
    elif kind == "reset":
        g.set_params(node, {})
    elif kind == "remove_edge":
        edges = sorted(g.edges(), key=lambda e: (e.src, e.dst, e.port))
        if edges:
            e = edges[b % len(edges)]
            g.remove_edge(e.src, e.dst, e.port)
    elif kind == "add_edge":
        dst = nodes[b % len(nodes)]
        if not g.nx.has_edge(node, dst, key=port):
            g.add_edge(node, dst, port)
    elif kind == "add_node":
        new = g.new_id("n")
        g.add_node(new, ["Conv2d", "Activation", "MaxPool2d", "Linear", "Add"][b % 5])
        g.add_edge(node, new)
    elif kind == "remove_node":
        g.remove_node(node)
    else:
        g.set_pos(node, (a, b))


def comparable(r: Report) -> tuple:
    return (r.nodes, sorted(map(str, r.errors)), sorted(map(str, r.warnings)),
            sorted(r.input_ids), r.output_id, r.total_params, r.total_macs)


@settings(max_examples=30, deadline=None)
@given(st.lists(edits(), min_size=1, max_size=12))
def test_incremental_analysis_equals_fresh_analysis(edit_list):
    g = edit_graph()
    first = analyze(g)
    assert first.ok, first.errors
    for edit in edit_list:
        apply_edit(g, edit)
        incremental = analyze(g)
        fresh = analyze(g.copy())
        assert comparable(incremental) == comparable(fresh), edit
        again = analyze(g)  # a second call with nothing changed
        assert comparable(again) == comparable(incremental)


def test_set_param_upstream_updates_downstream():
    g = edit_graph()
    r1 = analyze(g)
    assert r1.nodes["fc"].params == 16 * 5 + 5
    g.set_param("c2", "out_channels", 4)
    r2 = analyze(g)
    assert "shapes" in error_of(r2, "add")
    assert r2.nodes["fc"].output_shape is None
    g.set_param("sc", "out_channels", 4)
    r3 = analyze(g)
    assert r3.ok
    assert r3.nodes["cat"].output_shape == (12, 8, 8)
    assert r3.nodes["fc"].params == 12 * 5 + 5
    assert r3.nodes["c1"] is r1.nodes["c1"]  # untouched nodes come from the memo


def test_mutating_params_dict_then_set_params_is_seen():
    g = edit_graph()
    analyze(g)
    params = dict(g.params_of("fc"))
    params["out_features"] = 7
    g.set_params("fc", params)
    assert analyze(g).output_shape == (7,)


def test_remove_node_and_readd_with_other_type():
    g = edit_graph()
    analyze(g)
    g.remove_node("r1")
    r = analyze(g)
    assert "no input" in error_of(r, "p1")
    g.add_node("r1", "Dropout")
    g.add_edge("c1", "r1")
    g.add_edge("r1", "p1")
    r = analyze(g)
    assert r.ok and r.nodes["r1"].type == "Dropout"
    assert comparable(r) == comparable(analyze(g.copy()))
