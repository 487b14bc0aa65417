"""The plug-in example shipped in resources/examples/ and shown in the README."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from plugin_samples import isolate

from engine import Graph, analyze, compile_graph
from engine.plugins import load_plugins, unload_plugins

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "resources" / "examples"


@pytest.fixture
def example_blocks(monkeypatch, tmp_path):
    isolate(monkeypatch, tmp_path / "home", EXAMPLES / "blocks")
    problems = load_plugins()
    yield problems
    unload_plugins()


def test_the_readme_shows_the_shipped_plugin_file_word_for_word():
    source = (EXAMPLES / "blocks" / "squeeze_excite.py").read_text(encoding="utf-8")
    assert source.rstrip() in (ROOT / "README.md").read_text(encoding="utf-8")


def test_the_example_design_analyses_and_compiles_with_its_plugins(example_blocks):
    assert example_blocks == []
    graph = Graph.load(EXAMPLES / "se_net.convas.json")
    report = analyze(graph)
    assert report.ok, report.errors
    model = compile_graph(graph, report)
    assert sum(p.numel() for p in model.parameters()) == report.total_params
    for node in ("se1", "sep1", "sep2"):
        module = model.get_submodule(node)
        assert sum(p.numel() for p in module.parameters()) == report.nodes[node].params
    y = model(torch.randn(2, 1, 32, 32))
    assert tuple(y.shape) == (2, *report.output_shape)
    # rf given as a function of the parameters: sep2's 3×3 window at stride 2 after
    # pool2 (RF 10, jump 4) sees 10 + 2·4 = 18 pixels, and the grid gets twice as coarse.
    assert (report.nodes["pool2"].receptive_field, report.nodes["pool2"].jump) == (10, 4)
    assert (report.nodes["sep2"].receptive_field, report.nodes["sep2"].jump) == (18, 8)
    assert (report.nodes["sep1"].receptive_field, report.nodes["sep1"].jump) == (8, 2)
