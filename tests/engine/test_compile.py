"""compile_graph (SPEC §5): a real torch module that follows the graph exactly."""

from __future__ import annotations

import inspect

import pytest
import torch
from graph_builders import build as build_graph
from torch import fx, nn

from engine import Graph, GraphError, analyze, compile_graph

torch.set_num_threads(1)


def build(nodes: list[tuple], edges: list[tuple], name: str = "Small net") -> Graph:
    return build_graph(nodes, edges, name)


def small(input_id: str = "input") -> Graph:
    return build(
        [(input_id, "Input", {"channels": 1, "height": 12, "width": 12}),
         ("c1", "Conv2d", {"out_channels": 4, "kernel_size": 3}),
         ("bn", "BatchNorm", {}),
         ("act", "Activation", {"function": "relu"}),
         ("pool", "MaxPool2d", {}),
         ("res", "ResidualBlock", {"out_channels": 8, "stride": 2}),
         ("flat", "Flatten", {}),
         ("drop", "Dropout", {"p": 0.2}),
         ("fc", "Linear", {"out_features": 3}),
         ("out", "Output", {})],
        [(input_id, "c1"), ("c1", "bn"), ("bn", "act"), ("act", "pool"), ("pool", "res"),
         ("res", "flat"), ("flat", "drop"), ("drop", "fc"), ("fc", "out")],
    )


def test_small_graph_compiles_with_the_analysed_counts():
    g = small()
    report = analyze(g)
    model = compile_graph(g)
    assert isinstance(model, fx.GraphModule)
    assert sum(p.numel() for p in model.parameters()) == report.total_params
    model.eval()
    y = model(torch.randn(5, 1, 12, 12))
    assert tuple(y.shape) == (5, *report.output_shape) == (5, 3)
    # every block's real output shape is the analysed one
    seen = {}

    class Recorder(fx.Interpreter):
        def run_node(self, n):
            out = super().run_node(n)
            if isinstance(out, torch.Tensor):
                seen[n.name] = tuple(out.shape[1:])
            return out

    Recorder(model).run(torch.randn(2, 1, 12, 12))
    for nid, info in report.nodes.items():
        if info.type not in ("Input", "Output"):
            assert seen[nid] == info.output_shape, nid


def test_generated_code_has_one_line_per_block_named_after_node_ids():
    # (an Input called "input", a Python builtin, gets an extra "input_1 = input" line)
    g = small(input_id="image")
    model = compile_graph(g)
    code = model.code
    lines = [ln.strip() for ln in code.splitlines() if ln.strip()]
    for nid in ("c1", "bn", "act", "pool", "res", "drop", "fc"):
        assert f"self.{nid}(" in code
    for nid in ("c1", "bn", "act", "pool", "res", "flat", "drop", "fc"):
        assert sum(ln.startswith(f"{nid} = ") for ln in lines) == 1, (nid, code)
    assert "def forward(self, image)" in code
    assert "torch.flatten(res, 1)" in code
    assert sum(ln.startswith("return ") for ln in lines) == 1
    assert len(lines) == 1 + 8 + 1  # def, one line per block, return
    assert type(model).__name__ == "SmallNet"
    assert {k.split(".")[0] for k in model.state_dict()} == {"c1", "bn", "res", "fc"}


def test_compile_reuses_a_given_report():
    g = small()
    report = analyze(g)
    model = compile_graph(g, report)
    assert sum(p.numel() for p in model.parameters()) == report.total_params


def test_broken_graph_raises_graph_error_with_per_node_errors():
    g = small()
    g.set_param("c1", "kernel_size", 0)
    g.set_param("fc", "bogus", 1)
    g.add_node("lonely", "Add")
    with pytest.raises(GraphError) as info:
        compile_graph(g)
    nodes = {e.node for e in info.value.errors}
    assert {"c1", "lonely"} <= nodes
    assert "c1" in str(info.value) and "kernel_size" in str(info.value)


def test_graph_without_output_raises():
    g = build([("x", "Input", {}), ("c", "Conv2d", {})], [("x", "c")])
    with pytest.raises(GraphError, match="no Output"):
        compile_graph(g)


def clashing(nid: str) -> Graph:
    return build(
        [("input", "Input", {"channels": 2, "height": 6, "width": 6}),
         (nid, "Conv2d", {"out_channels": 3}),
         ("after", "Activation", {}),
         ("out", "Output", {})],
        [("input", nid), (nid, "after"), ("after", "out")],
    )


@pytest.mark.parametrize("nid", ["forward", "training", "to", "eval", "graph", "code",
                                 "meta", "_modules", "_parameters", "state_dict"])
def test_node_id_clashing_with_a_module_attribute_still_compiles(nid):
    model = compile_graph(clashing(nid))
    y = model(torch.randn(2, 2, 6, 6))
    assert tuple(y.shape) == (2, 3, 6, 6)
    assert model.training is True  # the attribute is still the Module's
    model.eval()
    assert model.training is False
    convs = [name for name, m in model.named_modules() if isinstance(m, nn.Conv2d)]
    assert len(convs) == 1 and convs[0].startswith(nid)  # e.g. "training_"
    assert f"{convs[0]}.weight" in model.state_dict()


@pytest.mark.parametrize("first, second", [("to", "to_"), ("forward", "forward_")])
def test_renamed_node_does_not_take_the_name_of_another_node(first, second):
    """"to" becomes submodule "to_"; a node really called "to_" must keep its own."""
    g = build([("input", "Input", {"channels": 2, "height": 6, "width": 6}),
               (first, "Conv2d", {"out_channels": 3}), (second, "Conv2d", {"out_channels": 5}),
               ("out", "Output", {})],
              [("input", first), (first, second), (second, "out")])
    model = compile_graph(g)
    assert sum(p.numel() for p in model.parameters()) == analyze(g).total_params
    assert tuple(model(torch.randn(1, 2, 6, 6)).shape) == (1, 5, 6, 6)


@pytest.mark.parametrize("nid", ["self", "class", "None", "return", "lambda"])
def test_node_id_that_is_a_python_name_of_the_generated_code_still_compiles(nid):
    """Valid ids per SPEC §1 that are keywords or `self` in the generated forward."""
    model = compile_graph(clashing(nid))
    assert tuple(model(torch.randn(2, 2, 6, 6)).shape) == (2, 3, 6, 6)


@pytest.mark.parametrize("nid", ["self", "class", "torch"])
def test_input_id_that_is_a_python_name_still_compiles(nid):
    g = build([(nid, "Input", {"channels": 2, "height": 6, "width": 6}),
               ("c", "Conv2d", {"out_channels": 3}), ("out", "Output", {})],
              [(nid, "c"), ("c", "out")])
    model = compile_graph(g)
    assert tuple(model(torch.randn(2, 2, 6, 6)).shape) == (2, 3, 6, 6)


def test_functional_node_named_like_a_global_of_the_generated_code():
    g = build([("input", "Input", {"channels": 2, "height": 6, "width": 6}),
               ("torch", "GlobalAvgPool", {}), ("operator", "Flatten", {}),
               ("sum", "Concat", {}), ("out", "Output", {})],
              [("input", "torch"), ("torch", "operator"), ("torch", "sum", 0),
               ("operator", "sum", 1), ("sum", "out")])
    x = torch.randn(2, 2, 6, 6)
    y = compile_graph(g)(x)
    m = x.mean((2, 3))
    assert torch.equal(y, torch.cat([m, m], 1))


def test_nodes_not_leading_to_output_are_left_out():
    g = small()
    g.add_node("side", "Conv2d", {"out_channels": 5})
    g.add_node("side2", "Linear", {})
    g.add_edge("pool", "side")
    g.add_node("side_flat", "Flatten")
    g.add_edge("side", "side_flat")
    g.add_edge("side_flat", "side2")
    report = analyze(g)
    assert report.ok
    model = compile_graph(g)
    names = {n for n, _ in model.named_modules()}
    assert not {"side", "side2"} & names
    assert "side" not in model.code and "side_flat" not in model.code
    assert sum(p.numel() for p in model.parameters()) == analyze(small()).total_params
    assert tuple(model(torch.randn(2, 1, 12, 12)).shape) == (2, 3)


def constant_conv(model: nn.Module, nid: str, value: float) -> None:
    conv = model.get_submodule(nid)  # submodules are named after the node ids
    with torch.no_grad():
        conv.weight.zero_()
        conv.bias.fill_(value)


def test_concat_order_follows_ports_not_wiring_order():
    g = build(
        [("input", "Input", {"channels": 2, "height": 4, "width": 4}),
         ("small", "Conv2d", {"out_channels": 1, "kernel_size": 1}),
         ("big", "Conv2d", {"out_channels": 3, "kernel_size": 1}),
         ("mid", "Conv2d", {"out_channels": 2, "kernel_size": 1}),
         ("cat", "Concat", {}), ("out", "Output", {})],
        # wired in the "wrong" order on purpose: ports decide
        [("input", "big"), ("input", "small"), ("input", "mid"),
         ("big", "cat", 2), ("mid", "cat", 5), ("small", "cat", 0), ("cat", "out")],
    )
    report = analyze(g)
    assert report.nodes["cat"].output_shape == (6, 4, 4)
    model = compile_graph(g)
    constant_conv(model, "small", 1.0)
    constant_conv(model, "big", 2.0)
    constant_conv(model, "mid", 3.0)
    y = model(torch.randn(1, 2, 4, 4))
    per_channel = y[0].mean((1, 2)).tolist()
    assert per_channel == [1.0, 2.0, 2.0, 2.0, 3.0, 3.0]
    assert "torch.cat([small, big, mid], 1)" in model.code


def test_add_of_three_inputs():
    g = build(
        [("input", "Input", {"channels": 2, "height": 4, "width": 4}),
         ("a", "Conv2d", {"out_channels": 3, "kernel_size": 1}),
         ("b", "Conv2d", {"out_channels": 3, "kernel_size": 1}),
         ("c", "Conv2d", {"out_channels": 3, "kernel_size": 1}),
         ("add", "Add", {}), ("out", "Output", {})],
        [("input", "a"), ("input", "b"), ("input", "c"),
         ("a", "add", 0), ("b", "add", 1), ("c", "add", 2), ("add", "out")],
    )
    model = compile_graph(g)
    for nid, v in (("a", 1.0), ("b", 10.0), ("c", 100.0)):
        constant_conv(model, nid, v)
    y = model(torch.randn(2, 2, 4, 4))
    assert torch.equal(y, torch.full((2, 3, 4, 4), 111.0))


def test_add_of_two_is_a_plain_sum():
    g = build(
        [("input", "Input", {"channels": 2, "height": 4, "width": 4}),
         ("act", "Activation", {"function": "tanh"}), ("add", "Add", {}),
         ("out", "Output", {})],
        [("input", "act"), ("input", "add", 0), ("act", "add", 1), ("add", "out")],
    )
    x = torch.randn(2, 2, 4, 4)
    assert torch.allclose(compile_graph(g)(x), x + torch.tanh(x))


def test_two_inputs_give_forward_a_b():
    g = build(
        [("a", "Input", {"channels": 2, "height": 4, "width": 4}),
         ("b", "Input", {"channels": 3, "height": 4, "width": 4}),
         ("cat", "Concat", {}), ("out", "Output", {})],
        [("b", "cat", 0), ("a", "cat", 1), ("cat", "out")],
    )
    model = compile_graph(g)
    assert list(inspect.signature(model.forward).parameters) == ["a", "b"]
    a, b = torch.randn(1, 2, 4, 4), torch.randn(1, 3, 4, 4)
    assert torch.equal(model(a, b), torch.cat([b, a], 1))
    assert torch.equal(model(b=b, a=a), torch.cat([b, a], 1))


def test_output_directly_after_input():
    g = build([("x", "Input", {}), ("out", "Output", {})], [("x", "out")])
    x = torch.randn(1, 3, 32, 32)
    assert torch.equal(compile_graph(g)(x), x)


def test_compiled_module_trains_and_keeps_state_dict_keys():
    g = small()
    model = compile_graph(g)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    x, target = torch.randn(4, 1, 12, 12), torch.tensor([0, 1, 2, 0])
    loss = nn.functional.cross_entropy(model(x), target)
    loss.backward()
    assert all(p.grad is not None for p in model.parameters())
    opt.step()
    again = compile_graph(g)
    again.load_state_dict(model.state_dict())  # same keys, same shapes
    model.eval()
    again.eval()
    assert torch.equal(model(x), again(x))


def test_inplace_activations_only_where_safe_and_gradients_unchanged():
    """ReLU runs in place after a block that does not keep its output (as torchvision
    does); never after sigmoid (whose backward needs its output) nor on a fan-out."""
    g = Graph("inplace")
    g.add_node("x", "Input", {"channels": 2, "height": 6, "width": 6})
    g.add_node("conv", "Conv2d", {"out_channels": 4})
    g.add_node("relu_a", "Activation", {})
    g.add_node("sig", "Activation", {"function": "sigmoid"})
    g.add_node("relu_b", "Activation", {})
    g.add_node("conv2", "Conv2d", {"out_channels": 4})
    g.add_node("relu_c", "Activation", {"function": "relu6"})
    g.add_node("skip", "Add", {})
    g.add_node("out", "Output", {})
    for a, b in [("x", "conv"), ("conv", "relu_a"), ("relu_a", "sig"), ("sig", "relu_b"),
                 ("relu_b", "conv2"), ("conv2", "relu_c"), ("conv2", "skip")]:
        g.add_edge(a, b)
    g.add_edge("relu_c", "skip", 1)
    g.add_edge("skip", "out")
    model = compile_graph(g)
    assert model.relu_a.inplace is True
    assert model.relu_b.inplace is False  # after sigmoid
    assert model.relu_c.inplace is False  # conv2 also feeds the Add
    x = torch.randn(3, 2, 6, 6, requires_grad=True)
    model(x).square().sum().backward()
    grads = [p.grad.clone() for p in model.parameters()] + [x.grad.clone()]
    model.zero_grad()
    x.grad = None
    for m in model.modules():
        if hasattr(m, "inplace"):
            m.inplace = False
    model(x).square().sum().backward()
    for a, b in zip(grads, [p.grad for p in model.parameters()] + [x.grad], strict=True):
        torch.testing.assert_close(a, b)
