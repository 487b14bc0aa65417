"""Fully convolutional designs (SPEC §7): "make fully convolutional" keeps the parameter
count and the answer at the trained size and gives a heat map at larger sizes; the
blocker names the block that ties a design to one input size."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from engine import Graph, GraphError, analyze, compile_graph
from engine.fcn import (
    FcnError,
    fully_convolutional_blocker,
    larger_sizes,
    make_fully_convolutional,
)

TEMPLATES = Path("resources/templates")


def _template(name: str) -> Graph:
    return Graph.load(TEMPLATES / f"{name}.convas.json")


def _chain(*nodes: tuple[str, str, dict], size: tuple[int, int, int] = (1, 8, 8)) -> Graph:
    """Input → nodes… → Output, one wire each."""
    g = Graph("chain")
    c, h, w = size
    g.add_node("input", "Input", {"channels": c, "height": h, "width": w})
    prev = "input"
    for nid, kind, params in nodes:
        g.add_node(nid, kind, params)
        g.add_edge(prev, nid)
        prev = nid
    g.add_node("out", "Output")
    g.add_edge(prev, "out")
    return g


def _trained_lenet() -> tuple[Graph, torch.nn.Module]:
    """LeNet-5 trained for a few Adam steps on random images and labels: weights that
    are not the initial ones, which is all the conversion must carry."""
    graph = _template("lenet5")
    torch.manual_seed(0)
    model = compile_graph(graph)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    x, y = torch.randn(32, 1, 32, 32), torch.randint(0, 10, (32,))
    for _ in range(5):
        loss = torch.nn.functional.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return graph, model.eval()


def test_lenet_keeps_its_parameters_and_its_answer_and_gives_a_heat_map() -> None:
    graph, model = _trained_lenet()
    before = [n["type"] for n in graph.to_dict()["nodes"]]
    fc = make_fully_convolutional(graph, model.state_dict())
    assert [n["type"] for n in graph.to_dict()["nodes"]] == before  # the input is untouched

    types = {n: fc.graph.type_of(n) for n in fc.graph.nodes}
    assert "Flatten" not in types.values() and "Linear" not in types.values()
    assert fc.converted == ("f5", "f6", "f7") and fc.removed == ("flatten",)
    assert fc.graph.params_of("f5")["kernel_size"] == 5  # the [16,5,5] map's size
    assert fc.graph.params_of("f6")["kernel_size"] == 1
    assert fc.graph.inputs_of("f5") == [(0, "s4")]
    assert all(n in fc.describe() for n in ("flatten", "f5", "f6", "f7"))

    old, new = analyze(graph), analyze(fc.graph)
    assert new.errors == [] and new.total_params == old.total_params == 61_706
    assert new.output_shape == (10, 1, 1)
    converted = compile_graph(fc.graph, new)
    assert sum(p.numel() for p in converted.parameters()) == 61_706
    converted.load_state_dict(fc.state_dict, strict=True)
    converted.eval()

    x = torch.randn(4, 1, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(converted(x).flatten(1), model(x), atol=1e-5, rtol=1e-5)
        big = torch.randn(2, 1, 48, 40)
        heat = converted(big)
        assert heat.shape == (2, 10, 5, 3)  # one answer per 32×32 window, 4 pixels apart
        # each cell is the classifier's answer on its window of the larger image
        for i, j in ((0, 0), (4, 2), (2, 1)):
            window = big[:, :, 4 * i:4 * i + 32, 4 * j:4 * j + 32]
            torch.testing.assert_close(heat[:, :, i, j], model(window), atol=1e-5, rtol=1e-5)
    assert fully_convolutional_blocker(fc.graph) is None


def test_head_with_dropout_batchnorm_and_softmax_converts_exactly() -> None:
    graph = _chain(("conv", "Conv2d", {"out_channels": 4}),
                   ("pool", "MaxPool2d", {}),
                   ("flat", "Flatten", {}),
                   ("drop", "Dropout", {"p": 0.3}),
                   ("fc1", "Linear", {"out_features": 12}),
                   ("bn", "BatchNorm", {}),
                   ("relu", "Activation", {}),
                   ("fc2", "Linear", {"out_features": 3, "bias": False}),
                   ("soft", "Activation", {"function": "softmax"}))
    torch.manual_seed(1)
    model = compile_graph(graph)
    with torch.no_grad():  # statistics as training leaves them
        model.bn.running_mean.uniform_(-0.5, 0.5)
        model.bn.running_var.uniform_(0.5, 2.0)
    model.eval()
    fc = make_fully_convolutional(graph, model.state_dict())
    assert fc.graph.type_of("bn") == "BatchNorm" and "BatchNorm2d" in fc.describe()
    assert fc.graph.params_of("fc1")["kernel_size"] == 4
    assert fc.graph.params_of("fc2")["bias"] is False
    converted = compile_graph(fc.graph).eval()
    converted.load_state_dict(fc.state_dict, strict=True)
    x = torch.randn(3, 1, 8, 8)
    with torch.no_grad():
        torch.testing.assert_close(converted(x).flatten(1), model(x))
        assert converted(torch.randn(1, 1, 16, 12)).shape == (1, 3, 5, 3)


def test_without_weights_only_the_graph_changes() -> None:
    fc = make_fully_convolutional(_template("x_vs_o"))
    assert fc.state_dict is None
    assert analyze(fc.graph).total_params == 7_026
    assert fc.graph.to_dict()["training"] == _template("x_vs_o").training  # kept


def test_an_adaptive_pool_that_does_nothing_goes_too() -> None:
    graph = _chain(("conv", "Conv2d", {"out_channels": 4}),
                   ("adapt", "AdaptiveAvgPool2d", {"output_size": 8}),
                   ("flat", "Flatten", {}),
                   ("fc", "Linear", {"out_features": 2}))
    assert fully_convolutional_blocker(graph)[0] == "adapt"
    torch.manual_seed(2)
    model = compile_graph(graph).eval()
    fc = make_fully_convolutional(graph, model.state_dict())
    assert fc.removed == ("adapt", "flat")
    assert fc.graph.inputs_of("fc") == [(0, "conv")]
    converted = compile_graph(fc.graph).eval()
    converted.load_state_dict(fc.state_dict)
    x = torch.randn(2, 1, 8, 8)
    with torch.no_grad():
        torch.testing.assert_close(converted(x).flatten(1), model(x))


@pytest.mark.parametrize(("nodes", "named", "words"), [
    ((("flat", "Flatten", {}), ("bn", "BatchNorm", {}), ("fc", "Linear", {})),
     "bn", "flattened map"),
    ((("flat", "Flatten", {}), ("soft", "Activation", {"function": "softmax"}),
      ("fc", "Linear", {})), "soft", "flattened map"),
    ((("conv", "Conv2d", {}), ("gap", "GlobalAvgPool", {}), ("fc", "Linear", {})),
     None, "nothing to convert"),
])
def test_heads_without_an_equivalent_are_refused_by_name(nodes, named, words) -> None:
    with pytest.raises(FcnError) as exc:
        make_fully_convolutional(_chain(*nodes))
    assert words in str(exc.value)
    if named:
        assert str(exc.value).startswith(named)


def test_a_join_with_a_vector_from_elsewhere_is_refused() -> None:
    graph = _chain(("conv", "Conv2d", {"out_channels": 4}), ("flat", "Flatten", {}),
                   ("fc", "Linear", {"out_features": 4}), ("cat", "Concat", {}))
    graph.add_node("gap", "GlobalAvgPool")
    graph.add_edge("conv", "gap")
    graph.add_edge("gap", "cat", 1)
    with pytest.raises(FcnError, match="cat .*gap"):
        make_fully_convolutional(graph)


def test_weights_of_another_design_are_refused() -> None:
    graph = _template("x_vs_o")
    state = compile_graph(_template("lenet5")).state_dict()
    with pytest.raises(FcnError, match="another design"):
        make_fully_convolutional(graph, state)


def test_invalid_graph_raises_graph_error() -> None:
    graph = _chain(("fc", "Linear", {}))  # Linear on an image
    with pytest.raises(GraphError):
        make_fully_convolutional(graph)
    with pytest.raises(GraphError):
        fully_convolutional_blocker(graph)


def test_blocker_names_the_block_that_fixes_the_size() -> None:
    node, reason = fully_convolutional_blocker(_template("lenet5"))
    assert node == "flatten" and "[16,5,5]" in reason and "1,008 at 48×40" in reason
    node, reason = fully_convolutional_blocker(_template("vgg16"))
    assert node == "avgpool" and "7×7" in reason
    # a GlobalAvgPool classifier gives one answer per image at any size
    assert fully_convolutional_blocker(_template("resnet18")) is None
    assert fully_convolutional_blocker(_template("unet_shapes")) is None
    assert fully_convolutional_blocker(_template("fcn_shapes")) is None


def test_blocker_finds_a_block_that_fails_at_a_larger_size() -> None:
    # pooled by 3 then grown by 4 pixels: matches the map it joins at 6×6 only
    g = _chain(("conv", "Conv2d", {"out_channels": 2}), size=(1, 6, 6))
    g.add_node("pool", "MaxPool2d", {"kernel_size": 3})
    g.add_node("fixed", "ConvTranspose2d", {"out_channels": 2, "kernel_size": 5,
                                            "stride": 1})
    g.add_node("cat", "Concat")
    g.remove_edge("conv", "out")
    for a, b in (("conv", "pool"), ("pool", "fixed"), ("conv", "cat")):
        g.add_edge(a, b)
    g.add_edge("fixed", "cat", 1)
    g.add_edge("cat", "out")
    assert analyze(g).errors == []
    node, reason = fully_convolutional_blocker(g)
    assert node == "cat" and "does not work at" in reason


def test_larger_sizes_keep_the_pooling_exact() -> None:
    graph = _template("unet_shapes")
    assert larger_sizes(graph) == {"input": (96, 80)}  # three 2×2 pools: steps of 8
