"""The graph file (SPEC §1): round trip, atomic save, and clear refusals on load."""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path

import pytest

from engine import Graph, GraphFileError
from engine.graph import FORMAT, VERSION


def sample() -> dict:
    """A file as a user (or a newer tool) may write it, unknown keys everywhere."""
    return {
        "format": "convas.graph",
        "version": 1,
        "name": "Residual toy",
        "nodes": [
            {"id": "input", "type": "Input", "params": {"channels": 1, "height": 28,
                                                         "width": 28}, "pos": [0, 0]},
            {"id": "c1", "type": "Conv2d",
             "params": {"out_channels": 8, "kernel_size": [3, 5], "padding": "valid",
                        "bias": False},
             "pos": [10.5, 120], "color": "#ff8800", "notes": {"why": "first layer"}},
            {"id": "c2", "type": "Conv2d", "params": {"out_channels": 8, "kernel_size": 1,
                                                      "padding": [1, 2]}, "pos": [-40, 200.25]},
            {"id": "cat", "type": "Concat", "params": {}},
            # wrong values are kept as written: the editor shows them on the block
            {"id": "bad", "type": "Linear", "params": {"out_features": -3, "mystery": 1}},
            {"id": "out", "type": "Output", "params": {}, "pos": [0, 900]},
        ],
        "edges": [
            {"from": "input", "to": "c1"},
            {"from": "input", "to": "c2"},
            {"from": "c2", "to": "cat", "port": 1},
            {"from": "c1", "to": "cat", "label": "main path"},
            {"from": "cat", "to": "out"},
        ],
        "training": {"dataset": "digits", "optimizer": "adam", "lr": 0.001, "epochs": 3,
                     "batch_size": 64, "future_setting": [1, 2, {"x": None}]},
        "author": "someone",
        "x_extension": {"nested": [1, 2, 3]},
    }


def edge_set(d: dict) -> set:
    return {(e["from"], e["to"], e.get("port", 0),
             json.dumps({k: v for k, v in e.items() if k not in ("from", "to", "port")},
                        sort_keys=True))
            for e in d["edges"]}


def test_to_dict_from_dict_round_trip_keeps_everything():
    d = sample()
    g = Graph.from_dict(copy.deepcopy(d))
    out = g.to_dict()
    assert {k: v for k, v in out.items() if k not in ("nodes", "edges")} == {
        k: v for k, v in d.items() if k not in ("nodes", "edges")}
    assert out["nodes"] == d["nodes"]  # params as written, pos, unknown node keys, order
    assert edge_set(out) == edge_set(d)
    assert Graph.from_dict(out).to_dict() == out


def test_graph_api_sees_the_file_content():
    g = Graph.from_dict(sample())
    assert g.name == "Residual toy"
    assert g.params_of("c1") == {"out_channels": 8, "kernel_size": [3, 5], "padding": "valid",
                                 "bias": False}
    assert g.pos_of("c1") == (10.5, 120)
    assert g.pos_of("cat") is None
    assert g.inputs_of("cat") == [(0, "c1"), (1, "c2")]
    assert g.training["future_setting"] == [1, 2, {"x": None}]
    assert g.extra == {"author": "someone", "x_extension": {"nested": [1, 2, 3]}}


def test_save_load_round_trip(tmp_path):
    path = tmp_path / "toy.convas.json"
    g = Graph.from_dict(sample())
    g.save(path)
    text = path.read_text(encoding="utf-8")
    assert json.loads(text)["format"] == FORMAT
    g2 = Graph.load(path)
    assert g2.to_dict() == g.to_dict()
    g2.save(path)
    assert path.read_text(encoding="utf-8") == text  # stable: saving twice changes nothing
    assert os.listdir(tmp_path) == ["toy.convas.json"]


def test_explicit_port_zero_and_unicode_name(tmp_path):
    d = sample()
    d["name"] = "Réseau — ü 中"
    d["edges"][0]["port"] = 0
    g = Graph.from_dict(d)
    path = tmp_path / "u.convas.json"
    g.save(path)
    g2 = Graph.load(path)
    assert g2.name == "Réseau — ü 中"
    assert ("input", "c1", 0) in {(e.src, e.dst, e.port) for e in g2.edges()}


def test_to_dict_is_a_copy():
    g = Graph.from_dict(sample())
    d = g.to_dict()
    d["nodes"][1]["params"]["out_channels"] = 999
    d["nodes"][1]["notes"]["why"] = "changed"
    d["training"]["lr"] = 1.0
    d["x_extension"]["nested"].append(4)
    fresh = g.to_dict()
    assert fresh["nodes"][1]["params"]["out_channels"] == 8
    assert fresh["nodes"][1]["notes"]["why"] == "first layer"
    assert fresh["training"]["lr"] == 0.001
    assert fresh["x_extension"]["nested"] == [1, 2, 3]


def test_copy_is_independent():
    g = Graph.from_dict(sample())
    c = g.copy()
    c.set_param("c1", "out_channels", 4)
    c.remove_edge("c1", "cat", 0)
    assert g.params_of("c1")["out_channels"] == 8
    assert ("c1", "cat", 0) in {(e.src, e.dst, e.port) for e in g.edges()}


# ---- atomic save ---------------------------------------------------------------------------


@pytest.mark.parametrize("where", ["replace", "fsync", "write"])
def test_failed_save_keeps_the_old_file_and_leaves_no_temp_file(tmp_path, monkeypatch, where):
    path = tmp_path / "model.convas.json"
    old = Graph.from_dict(sample())
    old.save(path)
    before = path.read_bytes()

    changed = Graph.from_dict(sample())
    changed.set_param("c1", "out_channels", 32)

    def boom(*args, **kwargs):
        raise OSError(28, "No space left on device")

    if where == "replace":
        monkeypatch.setattr(os, "replace", boom)
    elif where == "fsync":
        monkeypatch.setattr(os, "fsync", boom)
    else:  # the text is half written when the disk fills up
        real_fdopen = os.fdopen

        class HalfWriter:
            def __init__(self, fh):
                self.fh = fh

            def __enter__(self):
                return self

            def __exit__(self, *exc):
                self.fh.close()
                return False

            def write(self, text):
                self.fh.write(text[: len(text) // 2])
                boom()

        monkeypatch.setattr(os, "fdopen", lambda *a, **k: HalfWriter(real_fdopen(*a, **k)))

    with pytest.raises(OSError):
        changed.save(path)
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["model.convas.json"]
    assert Graph.load(path).params_of("c1")["out_channels"] == 8


def test_failed_serialisation_leaves_the_old_file(tmp_path):
    path = tmp_path / "model.convas.json"
    g = Graph.from_dict(sample())
    g.save(path)
    before = path.read_bytes()
    g.training["not_json"] = object()  # cannot be written as JSON
    with pytest.raises(TypeError):
        g.save(path)
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["model.convas.json"]


def test_save_into_a_new_file_in_the_current_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Graph.from_dict(sample()).save("plain.convas.json")
    assert Graph.load("plain.convas.json").name == "Residual toy"
    assert os.listdir(".") == ["plain.convas.json"]


# ---- refusals on load ----------------------------------------------------------------------


def load_text(tmp_path, text: str) -> Graph:
    path = tmp_path / "f.convas.json"
    path.write_text(text, encoding="utf-8")
    return Graph.load(path)


def refusal(tmp_path, data) -> GraphFileError:
    text = data if isinstance(data, str) else json.dumps(data)
    with pytest.raises(GraphFileError) as info:
        load_text(tmp_path, text)
    return info.value


def test_malformed_json_names_line_and_column(tmp_path):
    text = '{\n  "format": "convas.graph",\n  "version": 1,,\n  "nodes": []\n}\n'
    err = refusal(tmp_path, text)
    assert "line 3" in str(err)
    assert "column" in str(err)
    assert "f.convas.json" in str(err)


def test_not_an_object(tmp_path):
    assert "not a JSON object" in str(refusal(tmp_path, "[1, 2]"))


@pytest.mark.parametrize("fmt", ["convas.checkpoint", None, 3])
def test_wrong_format(tmp_path, fmt):
    d = sample()
    d["format"] = fmt
    err = refusal(tmp_path, d)
    assert "format" in str(err)
    assert "convas.graph" in str(err)


def test_missing_format(tmp_path):
    d = sample()
    del d["format"]
    assert "format" in str(refusal(tmp_path, d))


def test_newer_version_says_to_update(tmp_path):
    d = sample()
    d["version"] = VERSION + 1
    err = str(refusal(tmp_path, d))
    assert f"version {VERSION + 1}" in err
    assert "update Convas" in err


@pytest.mark.parametrize("version", [0, -1, "1", 1.5, True, None])
def test_invalid_version(tmp_path, version):
    d = sample()
    d["version"] = version
    assert "version" in str(refusal(tmp_path, d))


def test_unknown_block_type_names_the_node(tmp_path):
    d = sample()
    d["nodes"][2]["type"] = "Conv3d"
    err = refusal(tmp_path, d)
    assert "Conv3d" in str(err)
    assert any(e.node == "c2" for e in err.errors)
    assert "'c2'" in str(err)


def test_duplicate_id(tmp_path):
    d = sample()
    d["nodes"][2]["id"] = "c1"
    err = refusal(tmp_path, d)
    assert "used twice" in str(err)
    assert any(e.node == "c1" for e in err.errors)


@pytest.mark.parametrize("bad_id", ["1conv", "conv-1", "", "a b", "c.1", 7, None, "ü"])
def test_invalid_id(tmp_path, bad_id):
    d = sample()
    d["nodes"][2]["id"] = bad_id
    d["edges"] = [e for e in d["edges"] if "c2" not in (e["from"], e["to"])]
    err = str(refusal(tmp_path, d))
    assert repr(bad_id) in err
    assert "not a valid name" in err


def test_dangling_edge_names_the_missing_node(tmp_path):
    d = sample()
    d["edges"].append({"from": "ghost", "to": "out", "port": 1})
    err = refusal(tmp_path, d)
    assert "'ghost'" in str(err)
    assert any(e.node == "out" for e in err.errors)


def test_every_problem_is_listed_at_once(tmp_path):
    d = sample()
    d["nodes"][2]["type"] = "Nope"
    d["edges"].append({"from": "c1", "to": "nowhere"})
    err = refusal(tmp_path, d)
    text = str(err)
    assert "Nope" in text and "'nowhere'" in text
    assert len(err.errors) >= 2


@pytest.mark.parametrize("key, value, words", [
    ("nodes", {"id": "input"}, "nodes must be a list"),
    ("nodes", None, "nodes must be a list"),
    ("edges", "input->out", "edges must be a list"),
])
def test_non_list_nodes_or_edges(tmp_path, key, value, words):
    d = sample()
    d[key] = value
    assert words in str(refusal(tmp_path, d))


@pytest.mark.parametrize("edge, words", [
    ({"from": "c1", "to": "cat", "port": -1}, "port"),
    ({"from": "c1", "to": "cat", "port": "0"}, "port"),
    ({"from": "c1", "to": "cat"}, "twice"),
    ("c1->cat", "edges[5]"),
])
def test_bad_edges(tmp_path, edge, words):
    d = sample()
    d["edges"].append(edge)
    assert words in str(refusal(tmp_path, d))


@pytest.mark.parametrize("node_patch, words", [
    ({"params": [1, 2]}, "params must be an object"),
    ({"pos": [1]}, "pos"),
    ({"pos": "here"}, "pos"),
])
def test_bad_node_fields(tmp_path, node_patch, words):
    d = sample()
    d["nodes"][1].update(node_patch)
    err = refusal(tmp_path, d)
    assert words in str(err)
    assert any(e.node == "c1" for e in err.errors)


def test_missing_file_is_a_graph_file_error(tmp_path):
    with pytest.raises(GraphFileError, match="no such file"):
        Graph.load(tmp_path / "nope.convas.json")


def test_directory_is_a_graph_file_error(tmp_path):
    with pytest.raises(GraphFileError):
        Graph.load(tmp_path)


def test_not_utf8_is_a_graph_file_error(tmp_path):
    path = tmp_path / "latin1.convas.json"
    path.write_bytes(b'{"name": "R\xe9seau"}')
    with pytest.raises(GraphFileError):
        Graph.load(path)


def test_loading_is_only_data(tmp_path):
    """Payloads that a pickle- or eval-based loader would run stay plain data."""
    d = sample()
    payload = {"__reduce__": ["os.system", ["touch " + str(tmp_path / "pwned")]],
               "py/object": "os.system", "__class__": "subprocess.Popen"}
    d["nodes"][1]["params"]["kernel_size"] = "__import__('os').system('touch pwned')"
    d["nodes"][1]["payload"] = payload
    d["training"]["payload"] = payload
    d["payload"] = payload
    g = load_text(tmp_path, json.dumps(d))
    assert not (tmp_path / "pwned").exists()
    assert g.to_dict()["payload"] == payload
    assert g.to_dict()["nodes"][1]["payload"] == payload
    assert g.params_of("c1")["kernel_size"].startswith("__import__")


def test_a_missing_block_type_is_explained_once_and_each_of_its_nodes_named():
    data = Graph.load(Path(__file__).parents[2] / "resources" / "templates"
                      / "x_vs_o.convas.json").to_dict()
    for node in data["nodes"]:
        if node["id"] in ("relu1", "relu2"):
            node.update(type="SqueezeExcite", params={})
        if node["id"] == "relu3":
            node.update(type="GroupNorm", params={})
    with pytest.raises(GraphFileError) as caught:
        Graph.from_dict(data)
    errors = {e.node: e.message for e in caught.value.errors}
    assert set(errors) == {"relu1", "relu2", "relu3"}
    assert "folders searched for plug-ins" in errors["relu1"]
    assert errors["relu2"] == "unknown block type 'SqueezeExcite', as for node 'relu1'"
    assert "folders searched for plug-ins" in errors["relu3"]   # another type: its own
