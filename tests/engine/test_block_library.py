"""The personal block library (engine.block_library): one self-contained file per block,
checked like a design's "blocks", used by copying its definitions into a design."""

from __future__ import annotations

import copy
import json

import pytest
from user_block_designs import CONV_RELU, chain, nested_design

from engine import Graph, analyze
from engine import block_library as lib


@pytest.fixture
def folder(tmp_path, monkeypatch):
    """The library in the test's folder (through the environment variable)."""
    path = tmp_path / "library"
    monkeypatch.setenv(lib.ENV_VAR, str(path))
    return path


def _plain_design(size: int = 12) -> Graph:
    """input → output: a design with no blocks of its own, to take library blocks."""
    return Graph.from_dict({
        "format": "convas.graph", "version": 1, "name": "plain",
        "nodes": [{"id": "input", "type": "Input",
                   "params": {"channels": 3, "height": size, "width": size}},
                  {"id": "out", "type": "Output", "params": {}}],
        "edges": []})


def test_library_folder_follows_the_environment_else_the_data_folder(tmp_path, monkeypatch):
    monkeypatch.setenv(lib.ENV_VAR, str(tmp_path / "mine"))
    assert lib.library_folder() == tmp_path / "mine"
    monkeypatch.delenv(lib.ENV_VAR)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    monkeypatch.setattr(lib.sys, "platform", "linux")
    # beside the editor's runs: Qt's AppDataLocation for organisation and application Convas
    assert lib.library_folder() == tmp_path / "data" / "Convas" / "Convas" / "library"
    assert lib.read_library().blocks == {}  # a folder not created yet is an empty library


def test_saved_block_holds_the_blocks_it_uses_and_lists_back(folder):
    g = Graph.from_dict(nested_design())
    path = lib.save_to_library(g, "Merge")
    assert path == folder / "Merge.convas-block.json"
    data = json.loads(path.read_text("utf-8"))
    assert data["name"] == "Merge"
    assert list(data["blocks"]) == ["Merge", "ConvReLU"]  # Merge's body uses ConvReLU
    assert data["blocks"]["Merge"] == g.blocks["Merge"].to_dict()
    assert data["blocks"]["ConvReLU"] == g.blocks["ConvReLU"].to_dict()

    lib.save_to_library(g, "ConvReLU")
    listed = lib.list_library()
    assert list(listed) == ["ConvReLU", "Merge"]
    entry = listed["Merge"]
    assert entry.path == path and list(entry.definitions) == ["Merge", "ConvReLU"]
    assert entry.spec.category == lib.CATEGORY and entry.spec.source == str(path)
    assert [p.name for p in entry.spec.params] == ["width", "act", "bias", "p"]
    assert (entry.spec.min_inputs, entry.spec.max_inputs) == (2, 2)  # two Input ports
    assert entry.spec.doc == g.blocks["Merge"].doc
    assert list(listed["ConvReLU"].definitions) == ["ConvReLU"]


def test_definition_with_dependencies_follows_nesting_to_any_depth():
    outer = {"params": {}, "nodes": [{"id": "x", "type": "Input"},
                                     {"id": "m", "type": "Middle"},
                                     {"id": "y", "type": "Output"}],
             "edges": chain("x", "m", "y")}
    middle = {"params": {}, "nodes": [{"id": "x", "type": "Input"},
                                      {"id": "c", "type": "ConvReLU"},
                                      {"id": "y", "type": "Output"}],
              "edges": chain("x", "c", "y")}
    blocks = {"Outer": outer, "Middle": middle, "ConvReLU": CONV_RELU, "Unused": CONV_RELU}
    got = lib.definition_with_dependencies(blocks, "Outer")
    assert list(got) == ["Outer", "Middle", "ConvReLU"]
    assert got["ConvReLU"] == CONV_RELU and got["ConvReLU"] is not CONV_RELU  # a copy
    with pytest.raises(lib.LibraryError, match="no block 'Nope'.*Outer, Middle"):
        lib.definition_with_dependencies(blocks, "Nope")


def test_a_library_block_used_in_another_design_analyses_like_the_original(folder):
    source = Graph.from_dict(nested_design())
    lib.save_to_library(source, "ConvReLU")
    entry = lib.list_library()["ConvReLU"]
    design = _plain_design()
    new, node = lib.add_library_block(design, entry, (10, 20), wire_from="input")
    assert "ConvReLU" not in design.blocks and node not in design  # the input is kept
    assert list(new.blocks) == ["ConvReLU"] and new.type_of(node) == "ConvReLU"
    assert new.pos_of(node) == (10, 20) and new.inputs_of(node) == [(0, "input")]
    new.add_edge(node, "out")
    info = analyze(new).nodes[node]
    assert info.error is None
    # the same block written out of catalogue blocks, with the block's defaults
    reference = Graph.from_dict({
        "format": "convas.graph", "version": 1, "name": "reference",
        "nodes": [{"id": "input", "type": "Input",
                   "params": {"channels": 3, "height": 12, "width": 12}},
                  {"id": "conv", "type": "Conv2d", "params": {"out_channels": 8,
                                                              "kernel_size": 3}},
                  {"id": "relu", "type": "Activation", "params": {}},
                  {"id": "out", "type": "Output", "params": {}}],
        "edges": chain("input", "conv", "relu", "out")})
    ref = analyze(reference).nodes
    assert info.output_shape == ref["relu"].output_shape
    assert info.params == ref["conv"].params and info.macs == ref["conv"].macs + ref["relu"].macs


def test_a_design_using_a_library_block_opens_with_an_empty_library(folder, tmp_path):
    lib.save_to_library(Graph.from_dict(nested_design()), "Merge")
    entry = lib.list_library()["Merge"]
    design, node = lib.add_library_block(_plain_design(), entry, wire_from="input")
    design.add_edge("input", node, 1)
    design.add_edge(node, "out")
    saved = tmp_path / "uses_merge.convas.json"
    design.save(saved)
    lib.remove_from_library("Merge")
    assert lib.list_library() == {} and not any(folder.iterdir())
    again = Graph.load(saved)
    assert set(again.blocks) == {"Merge", "ConvReLU"}  # the nested one came along
    report = analyze(again)
    assert not report.errors
    assert report.nodes[node].params == analyze(design).nodes[node].params > 0


def test_broken_files_are_left_out_and_reported_by_name(folder):
    lib.save_to_library(Graph.from_dict(nested_design()), "ConvReLU")
    folder.joinpath("NotJson.convas-block.json").write_text("{oops", "utf-8")
    folder.joinpath("Other.convas-block.json").write_text(
        json.dumps({"format": "convas.graph", "version": 1}), "utf-8")
    unknown = copy.deepcopy(CONV_RELU)
    unknown["nodes"][1]["type"] = "Conv9d"
    cycle_a = {"params": {}, "nodes": [{"id": "x", "type": "Input"}, {"id": "b", "type": "B"},
                                       {"id": "y", "type": "Output"}],
               "edges": chain("x", "b", "y")}
    cycle_b = copy.deepcopy(cycle_a)
    cycle_b["nodes"][1] = {"id": "a", "type": "A"}
    cycle_b["edges"] = chain("x", "a", "y")
    for name, blocks in (("Unknown", {"Unknown": unknown}), ("A", {"A": cycle_a, "B": cycle_b}),
                         ("Missing", {"Elsewhere": CONV_RELU})):
        folder.joinpath(f"{name}.convas-block.json").write_text(json.dumps(
            {"format": lib.FORMAT, "version": 1, "name": name, "blocks": blocks}), "utf-8")
    found = lib.read_library()
    assert list(found.blocks) == ["ConvReLU"]
    text = "\n".join(found.problems)
    assert len(found.problems) == 5
    assert "NotJson.convas-block.json is not valid JSON" in text
    assert "Other.convas-block.json: not a Convas library block" in text
    assert "Unknown.convas-block.json: " in text and "Conv9d" in text
    assert "A.convas-block.json: block A uses itself (A → B → A)" in text
    assert "Missing.convas-block.json" in text and "'Missing'" in text


def test_two_files_holding_one_block_are_reported(folder):
    g = Graph.from_dict(nested_design())
    path = lib.save_to_library(g, "ConvReLU")
    for copy_name in ("Copy", "AAA"):  # read after, then before the block's own file
        (folder / f"{copy_name}.convas-block.json").write_text(path.read_text("utf-8"), "utf-8")
        found = lib.read_library()
        assert list(found.blocks) == ["ConvReLU"] and found.blocks["ConvReLU"].path == path
        assert f"{folder / copy_name}.convas-block.json: holds 'ConvReLU', which " \
               f"ConvReLU.convas-block.json holds too: delete one of them" in found.problems


def test_saving_refuses_a_broken_block_an_unknown_name_and_asked_overwrites(folder):
    d = nested_design()
    d["blocks"]["ConvReLU"]["nodes"][1]["params"]["stride"] = "$step"  # never declared
    g = Graph.from_dict(d)
    with pytest.raises(lib.LibraryError, match=r"\$step.*fix it before saving ConvReLU"):
        lib.save_to_library(g, "ConvReLU")
    with pytest.raises(lib.LibraryError, match="uses ConvReLU, which is wrong"):
        lib.save_to_library(g, "Merge")  # its nested block is broken
    assert not folder.exists()  # nothing written, not even the folder
    with pytest.raises(lib.LibraryError, match="no block 'Stage'"):
        lib.save_to_library(g, "Stage")

    good = Graph.from_dict(nested_design())
    path = lib.save_to_library(good, "ConvReLU")
    before = path.read_text("utf-8")
    good.blocks["ConvReLU"].doc = "changed"
    with pytest.raises(lib.LibraryError, match="already has a block 'ConvReLU'"):
        lib.save_to_library(good, "ConvReLU", overwrite=False)
    assert path.read_text("utf-8") == before
    lib.save_to_library(good, "ConvReLU")
    assert lib.list_library()["ConvReLU"].definition["doc"] == "changed"
    assert [p.name for p in folder.iterdir()] == [path.name]  # no temporary file left


def test_remove_deletes_the_file_and_says_when_there_is_none(folder):
    lib.save_to_library(Graph.from_dict(nested_design()), "ConvReLU")
    gone = lib.remove_from_library("ConvReLU")
    assert not gone.exists() and lib.list_library() == {}
    with pytest.raises(lib.LibraryError, match="has no block 'ConvReLU'"):
        lib.remove_from_library("ConvReLU")


def test_a_design_block_of_the_same_name_is_kept_or_replaced(folder):
    lib.save_to_library(Graph.from_dict(nested_design()), "Merge")
    entry = lib.list_library()["Merge"]
    d = nested_design()
    d["blocks"]["ConvReLU"]["params"]["width"]["default"] = 16  # the design's own version
    design = Graph.from_dict(d)
    assert lib.conflicts(design, entry) == ["ConvReLU"]  # Merge itself is the same
    assert lib.conflicts(Graph.from_dict(nested_design()), entry) == []

    kept, node = lib.add_library_block(design, entry, on_conflict="keep")
    assert kept.blocks["ConvReLU"].declarations["width"]["default"] == 16
    assert kept.type_of(node) == "Merge" and node not in design
    replaced, _ = lib.add_library_block(design, entry, on_conflict="replace")
    assert replaced.blocks["ConvReLU"].declarations["width"]["default"] == 8
    assert design.blocks["ConvReLU"].declarations["width"]["default"] == 16  # untouched


def test_a_spelling_difference_is_no_conflict(folder):
    design = Graph.from_dict(nested_design())
    path = lib.save_to_library(design, "ConvReLU")
    data = json.loads(path.read_text("utf-8"))
    for node in data["blocks"]["ConvReLU"]["nodes"]:
        if node["params"] == {}:
            del node["params"]  # as a person may write it
    path.write_text(json.dumps(data), "utf-8")
    assert lib.conflicts(design, lib.read_block_file(path)) == []
