"""Receptive fields (SPEC §3) against a brute-force one measured with autograd: the
input region one central output pixel depends on, for chains of every spatial block."""

from __future__ import annotations

import pytest
import torch

from engine import Graph, analyze

torch.set_num_threads(1)


def chain_graph(blocks: list[tuple[str, dict]], size: int, channels: int = 2) -> Graph:
    g = Graph("rf")
    g.add_node("x", "Input", {"channels": channels, "height": size, "width": size})
    prev = "x"
    for i, (type_name, params) in enumerate(blocks):
        nid = f"b{i}"
        g.add_node(nid, type_name, params)
        g.add_edge(prev, nid)
        prev = nid
    g.add_node("out", "Output")
    g.add_edge(prev, "out")
    return g


def measured_rf(g: Graph, samples: int = 96) -> tuple[int, int, int]:
    """(rows, cols, pixels) of the input region that one central output pixel depends on.

    The union of the gradient's support over a batch of random inputs, so that every
    position of a max-pool window gets to be the maximum for some sample; eval mode,
    so that BatchNorm does not mix the samples.
    """
    from engine import compile_graph

    torch.manual_seed(0)
    model = compile_graph(g).eval()
    size = g.params_of("x")["height"]
    x = torch.randn(samples, g.params_of("x")["channels"], size, size, requires_grad=True)
    y = model(x)
    i, j = y.shape[2] // 2, y.shape[3] // 2
    y[:, :, i, j].sum().backward()
    support = (x.grad.abs() > 0).any(dim=0).any(dim=0)
    rows = torch.nonzero(support.any(dim=1)).flatten()
    cols = torch.nonzero(support.any(dim=0)).flatten()
    assert rows.numel() and cols.numel()
    assert 0 < rows[0] and rows[-1] < size - 1, "the region touches the border: grow the input"
    return int(rows[-1] - rows[0] + 1), int(cols[-1] - cols[0] + 1), int(support.sum())


RF_CHAINS = {
    "conv3": ([("Conv2d", {"out_channels": 2})], 3, True),
    "conv5_dilated2": ([("Conv2d", {"out_channels": 2, "kernel_size": 3, "dilation": 2})],
                       5, False),
    "conv3_stride2_conv3": ([("Conv2d", {"out_channels": 2, "stride": 2}),
                             ("Conv2d", {"out_channels": 2})], 7, True),
    "maxpool2": ([("MaxPool2d", {})], 2, True),
    "maxpool3_stride2": ([("MaxPool2d", {"kernel_size": 3, "stride": 2})], 3, True),
    "conv_pool_conv": ([("Conv2d", {"out_channels": 2, "kernel_size": 5, "padding": "valid"}),
                        ("MaxPool2d", {}),
                        ("Conv2d", {"out_channels": 2, "kernel_size": 5, "padding": "valid"})],
                       14, True),
    "conv_pool_conv_pool": ([("Conv2d", {"out_channels": 2, "kernel_size": 3}),
                             ("MaxPool2d", {}),
                             ("Conv2d", {"out_channels": 2, "kernel_size": 3}),
                             ("MaxPool2d", {})], 10, True),
    "avgpool3": ([("AvgPool2d", {"kernel_size": 3, "stride": 1})], 3, True),
    "residual": ([("ResidualBlock", {"out_channels": 2})], 5, True),
    "residual_stride2": ([("ResidualBlock", {"out_channels": 4, "stride": 2})], 7, True),
    "residual_bottleneck": ([("ResidualBlock", {"out_channels": 4, "bottleneck": True})],
                            3, True),
    "residual_twice": ([("ResidualBlock", {"out_channels": 2}),
                        ("ResidualBlock", {"out_channels": 2})], 9, True),
    "inception": ([("InceptionBlock", {k: 2 for k in ("ch1x1", "ch3x3red", "ch3x3",
                                                        "ch5x5red", "ch5x5", "pool_proj")})],
                  5, True),
    "dense2": ([("DenseBlock", {"num_layers": 2, "growth_rate": 2, "bn_size": 1})], 5, True),
    "adaptive_23_to_7": ([("AdaptiveAvgPool2d", {"output_size": 7})], 5, True),
    "upsample_bilinear": ([("Upsample", {"mode": "bilinear"})], 2, True),
    "upsample_conv": ([("Upsample", {}), ("Conv2d", {"out_channels": 2, "kernel_size": 3})],
                      2, True),
}


@pytest.mark.parametrize("name", list(RF_CHAINS))
def test_receptive_field_matches_autograd(name):
    blocks, expected, dense = RF_CHAINS[name]
    g = chain_graph(blocks, size=23)
    report = analyze(g)
    assert report.ok, report.errors
    info = report.nodes[f"b{len(blocks) - 1}"]
    rows, cols, pixels = measured_rf(g)
    assert info.receptive_field == expected
    assert (rows, cols) == (expected, expected)
    if dense:
        assert pixels == expected * expected
    else:
        assert pixels < expected * expected  # dilation leaves holes


def test_receptive_field_jump_matches_neighbouring_outputs():
    """The jump is how far the input region moves between neighbouring output pixels."""
    from engine import compile_graph

    g = chain_graph([("Conv2d", {"out_channels": 2, "stride": 2}), ("MaxPool2d", {}),
                     ("Conv2d", {"out_channels": 2})], size=32)
    report = analyze(g)
    assert report.nodes["b2"].jump == 4
    model = compile_graph(g).eval()
    starts = []
    for j in (3, 4):
        x = torch.randn(64, 2, 32, 32, requires_grad=True)
        model(x)[:, :, 3, j].sum().backward()
        cols = torch.nonzero((x.grad.abs() > 0).any(0).any(0).any(0)).flatten()
        starts.append(int(cols[0]))
    assert starts[1] - starts[0] == 4
