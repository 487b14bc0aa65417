"""Group a selection into a block made of blocks and ungroup an instance (SPEC §9): pure
graph transformations that keep the network the same."""

from __future__ import annotations

from importlib import resources

import pytest
from graph_builders import build

from engine import Graph, analyze
from engine.grouping import group, ungroup

TEMPLATES = resources.files("resources") / "templates"


def _template(name: str) -> Graph:
    with resources.as_file(TEMPLATES / f"{name}.convas.json") as path:
        return Graph.load(path)


def _residual() -> Graph:
    """input → c1 → bn → relu → c2 → add(c2, c1) → gap → fc → out: a skip from c1."""
    g = Graph("skip")
    g.add_node("input", "Input", {"channels": 3, "height": 8, "width": 8}, (0, 0))
    for i, (n, t, p) in enumerate([
            ("c1", "Conv2d", {"out_channels": 4}), ("bn", "BatchNorm", {}),
            ("relu", "Activation", {}), ("c2", "Conv2d", {"out_channels": 4, "kernel_size": 5}),
            ("add", "Add", {}), ("gap", "GlobalAvgPool", {}),
            ("fc", "Linear", {"out_features": 3}), ("out", "Output", {})], 1):
        g.add_node(n, t, p, (0, 100 * i))
    for a, b in [("input", "c1"), ("c1", "bn"), ("bn", "relu"), ("relu", "c2"),
                 ("c2", "add"), ("gap", "fc"), ("fc", "out"), ("add", "gap")]:
        g.add_edge(a, b)
    g.add_edge("c1", "add", 1)
    return g


def _numbers(g: Graph) -> tuple:
    r = analyze(g)
    assert r.errors == []
    return r.total_params, r.total_macs, r.output_shape, r.nodes[r.output_id].receptive_field


def test_group_keeps_the_wires_and_the_numbers_and_ungroup_undoes_it() -> None:
    g = _residual()
    grouped, instance = group(g, ["bn", "relu", "c2", "add"], "Tail",
                              {"width": ("c2", "out_channels"), "k": ("c2", "kernel_size")})
    assert instance == "tail1" and grouped.type_of(instance) == "Tail"
    assert _numbers(grouped) == _numbers(g)
    # c1 feeds the selection twice (bn and add's port 1): one input port
    assert grouped.inputs_of(instance) == [(0, "c1")]
    assert grouped.consumers_of(instance) == ["gap"]
    block = grouped.blocks["Tail"]
    assert block.declarations == {"width": {"type": "int", "default": 4, "min": 1,
                                            "max": 65536},
                                  "k": {"type": "int2", "default": 5, "min": 1, "max": 255}}
    assert block.body.params_of("c2") == {"out_channels": "$width", "kernel_size": "$k"}
    assert grouped.params_of(instance) == {"width": 4, "k": 5}
    # the body keeps c1's two uses: into bn and into add's port 1
    assert sorted(block.body.inputs_of("add")) == [(0, "c2"), (1, "x")]
    # it saves and loads like any file
    assert analyze(Graph.loads(grouped.dumps())).total_params == _numbers(g)[0]

    grouped.set_param(instance, "width", 6)  # c2 now 6 wide: Add must complain inside
    (error,) = analyze(grouped).errors
    assert error.node == instance and error.message.startswith(f"{instance}/add: ")

    back = ungroup(grouped, instance)
    (error,) = analyze(back).errors  # the same mistake, now on the plain block
    assert error.node == "add"
    fixed = ungroup(group(g, ["bn", "relu", "c2", "add"], "Tail")[0], "tail1")
    assert sorted(fixed.nodes) == sorted(g.nodes)
    assert {(e.src, e.dst, e.port) for e in fixed.edges()} == \
        {(e.src, e.dst, e.port) for e in g.edges()}
    assert all(fixed.params_of(n) == g.params_of(n) for n in g.nodes)
    assert back.params_of("c2") == {"out_channels": 6, "kernel_size": 5}
    assert "Tail" in back.blocks  # the definition stays for other instances


def test_ungroup_the_vgg_stages_gives_the_primitive_network() -> None:
    g = _template("vgg16_stages")
    before = _numbers(g)
    for stage in ("stage1", "stage3"):
        g = ungroup(g, stage)
    assert _numbers(g) == before
    types = [g.type_of(n) for n in g.nodes]
    assert types.count("Stage2") == 1 and types.count("Stage3") == 2
    assert types.count("ConvReLU") == 5  # stage1's two, stage3's three
    g = ungroup(g, "c1")  # ids that were free keep their names
    assert g.params_of("conv") == {"out_channels": 64, "kernel_size": 3, "padding": 1}
    assert _numbers(g) == before


@pytest.mark.parametrize(("nodes", "words"), [
    ([], "select the blocks"),
    (["input", "c1"], "input is the design's Input"),
    (["c1", "c2"], "is between blocks of the selection"),
    (["c1", "bn"], "c1, bn all feed blocks outside it"),
    (["nope"], "no node 'nope'"),
])
def test_a_selection_that_cannot_be_one_block_is_refused(nodes, words) -> None:
    with pytest.raises(ValueError) as info:
        group(_residual(), nodes, "Part")
    assert words in str(info.value)


def test_group_refuses_a_taken_name_and_a_bad_argument() -> None:
    g = _residual()
    for name in ("Conv2d", "9x"):
        with pytest.raises(ValueError, match="name"):
            group(g, ["bn"], name)
    with pytest.raises(ValueError, match="has no parameter 'size'"):
        group(g, ["c2"], "P", {"s": ("c2", "size")})
    with pytest.raises(ValueError, match="cannot hold"):
        group(g, ["c2"], "P", {"pad": ("c2", "padding")})  # "same" is not a number


def test_group_works_on_a_graph_built_by_the_test_helpers() -> None:
    g = build([("input", "Input", {"channels": 1, "height": 8, "width": 8}),
               ("c", "Conv2d", {"out_channels": 2}), ("r", "Activation", {}),
               ("out", "Output", {})], [("input", "c"), ("c", "r"), ("r", "out")])
    grouped, instance = group(g, ["c", "r"], "CR", {"w": [("c", "out_channels")]})
    assert _numbers(grouped) == _numbers(g)
    assert grouped.spec("CR").min_inputs == 1
