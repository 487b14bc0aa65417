"""Feature maps inside blocks made of blocks (SPEC §9): the probe taps
``instance/inner_id`` paths, nested ones too, with the values the body computes."""

from __future__ import annotations

import torch
from user_block_designs import nested_design

from engine import Graph
from engine.compile import compile_graph
from engine.probe import activations, kernels, probe


def model_and_input():
    torch.manual_seed(0)
    model = compile_graph(Graph.from_dict(nested_design())).eval()
    return model, torch.randn(2, 3, 12, 12)


@torch.no_grad()
def test_inner_and_nested_paths_give_what_the_submodules_compute():
    model, x = model_and_input()
    maps = activations(model, x, ["s1", "s1/conv", "s1/relu", "m1/main/conv", "m1/add",
                                  "m1/nope", "nope/conv"])
    assert set(maps) == {"s1", "s1/conv", "s1/relu", "m1/main/conv", "m1/add"}
    conv = model.get_submodule("s1.conv")
    expected = conv(x)[0].numpy()
    assert maps["s1/conv"].shape == (6, 12, 12)
    assert abs(maps["s1/conv"] - expected).max() < 1e-5
    assert abs(maps["s1/relu"] - expected.clip(min=0)).max() < 1e-5
    assert abs(maps["s1"] - maps["s1/relu"]).max() == 0
    inner = model.get_submodule("m1.main.conv")(torch.relu(conv(x)))
    assert abs(maps["m1/main/conv"] - inner[0].numpy()).max() < 1e-5


def test_tapping_inside_changes_nothing_about_the_output():
    model, x = model_and_input()
    plain = model(x)
    _, tapped = probe(model, x, ["s1/conv", "m1/main/relu"])
    assert torch.equal(plain, tapped)


def test_kernels_of_an_inner_convolution():
    model, _ = model_and_input()
    k = kernels(model, "m1/main/conv")
    assert k is not None and k.shape == (6, 6, 3, 3)
    assert (k == model.get_submodule("m1.main.conv").weight.detach().numpy()).all()
    assert kernels(model, "m1/add") is None and kernels(model, "m1/zzz") is None


@torch.no_grad()
def test_a_convolution_before_an_in_place_relu_keeps_its_negative_values():
    """The ReLU after it runs in place: the map must be a copy taken before."""
    from graph_builders import build

    graph = build([("x", "Input", {"channels": 1, "height": 8, "width": 8}),
                   ("conv", "Conv2d", {"out_channels": 4}), ("relu", "Activation", {}),
                   ("out", "Output", {})], [("x", "conv"), ("conv", "relu"), ("relu", "out")])
    torch.manual_seed(1)
    model = compile_graph(graph).eval()
    x = torch.randn(1, 1, 8, 8)
    maps = activations(model, x, ["conv", "relu"])
    expected = model.get_submodule("conv")(x)[0].numpy()
    assert (expected < 0).any()
    assert abs(maps["conv"] - expected).max() < 1e-6
    assert abs(maps["relu"] - expected.clip(min=0)).max() < 1e-6
