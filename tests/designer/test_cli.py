"""`convas summary`: the table, the JSON object, and clear refusals of bad input; `convas
export --dynamic-size` refusing a design that is not fully convolutional."""

from __future__ import annotations

import copy
import json
import subprocess
import sys

import pytest

from designer.cli import main

LENET = {
    "format": "convas.graph", "version": 1, "name": "LeNet-5",
    "nodes": [
        {"id": "input", "type": "Input", "params": {"channels": 1, "height": 32, "width": 32}},
        {"id": "c1", "type": "Conv2d", "params": {"out_channels": 6, "kernel_size": 5,
                                                  "padding": "valid"}},
        {"id": "a1", "type": "Activation", "params": {"function": "tanh"}},
        {"id": "s2", "type": "MaxPool2d", "params": {"kernel_size": 2}},
        {"id": "c3", "type": "Conv2d", "params": {"out_channels": 16, "kernel_size": 5,
                                                  "padding": "valid"}},
        {"id": "a3", "type": "Activation", "params": {"function": "tanh"}},
        {"id": "s4", "type": "MaxPool2d", "params": {"kernel_size": 2}},
        {"id": "flat", "type": "Flatten", "params": {}},
        {"id": "f5", "type": "Linear", "params": {"out_features": 120}},
        {"id": "a5", "type": "Activation", "params": {"function": "tanh"}},
        {"id": "f6", "type": "Linear", "params": {"out_features": 84}},
        {"id": "a6", "type": "Activation", "params": {"function": "tanh"}},
        {"id": "f7", "type": "Linear", "params": {"out_features": 10}},
        {"id": "out", "type": "Output", "params": {}},
    ],
}
LENET["edges"] = [{"from": a["id"], "to": b["id"]}
                  for a, b in zip(LENET["nodes"], LENET["nodes"][1:], strict=False)]


def _write(tmp_path, data, name="g.convas.json"):
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else json.dumps(data), encoding="utf-8")
    return str(path)


def _node(d, nid):
    return next(n for n in d["nodes"] if n["id"] == nid)


def test_summary_table_has_every_layer_and_human_totals(tmp_path, capsys):
    assert main(["summary", _write(tmp_path, LENET)]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    c1 = next(line for line in lines if line.startswith("c1 "))
    assert c1.split()[:2] == ["c1", "Conv2d"] and "[6, 28, 28]" in c1 and "156" in c1
    assert "61,706 (61.7 k)" in out
    assert "416,520 (417 k)" in out
    assert "Training memory" in out
    # columns are aligned: every row's params column ends at the same place
    header = next(line for line in lines if line.startswith("id "))
    end = header.index("params") + len("params")
    rows = [line for line in lines if line.split()[:1] and line.split()[0] in
            {n["id"] for n in LENET["nodes"]}]
    assert len(rows) == len(LENET["nodes"])
    assert {row[end - 1] for row in rows} <= set("0123456789")


def test_summary_json_follows_spec(tmp_path, capsys):
    assert main(["summary", _write(tmp_path, LENET), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["name"] == "LeNet-5"
    assert data["total_params"] == data["trainable_params"] == 61706
    assert data["total_macs"] == 416520
    assert data["errors"] == []
    c1 = next(n for n in data["nodes"] if n["id"] == "c1")
    assert c1 == {"id": "c1", "type": "Conv2d", "output_shape": [6, 28, 28], "params": 156,
                  "macs": 117600, "activations": 4704, "receptive_field": 5, "jump": 1,
                  "error": None}
    assert data["memory"]["batch_size"] == 64


def _edit(mutate):
    d = copy.deepcopy(LENET)
    mutate(d)
    return d


def _set(nid, **params):
    return lambda d: _node(d, nid)["params"].update(params)


def _add_edge(src, dst, port=0):
    return lambda d: d["edges"].append({"from": src, "to": dst, "port": port})


def _remove_nodes(*ids):
    def mutate(d):
        d["nodes"] = [n for n in d["nodes"] if n["id"] not in ids]
        d["edges"] = [e for e in d["edges"] if e["from"] not in ids and e["to"] not in ids]
    return mutate


def _add_node(nid, type_, params, src_edges):
    def mutate(d):
        d["nodes"].append({"id": nid, "type": type_, "params": params})
        for src, port in src_edges:
            d["edges"].append({"from": src, "to": nid, "port": port})
    return mutate


def _chain(*mutations):
    def mutate(d):
        for m in mutations:
            m(d)
    return mutate


def _rewire(src, dst):
    """Replace the single wire into ``dst`` by one from ``src``."""
    def mutate(d):
        d["edges"] = [e for e in d["edges"] if e["to"] != dst]
        d["edges"].append({"from": src, "to": dst})
    return mutate


# (name, file content, words the message must contain: node id first, then the fix)
BAD_INPUTS = [
    ("malformed JSON", '{"format": "convas.graph", "version": 1, "nodes": [', ["line 1", "JSON"]),
    ("not an object", "[1, 2, 3]", ["not a Convas graph"]),
    ("wrong format", _edit(lambda d: d.update(format="keras.model")),
     ["keras.model", "not a Convas graph"]),
    ("newer version", _edit(lambda d: d.update(version=7)), ["version 7", "update Convas"]),
    ("unknown block type", _edit(lambda d: _node(d, "c3").update(type="Conv3d")),
     ["'c3'", "Conv3d", "Conv2d"]),
    ("unknown parameter", _edit(_set("c1", kernal_size=3)),
     ["'c1'", "kernal_size", "remove it", "kernel_size"]),
    ("out-of-range parameter", _edit(_set("c1", out_channels=0)),
     ["'c1'", "out_channels", "minimum 1"]),
    ("wrong parameter type", _edit(_set("f5", out_features="many")),
     ["'f5'", "out_features", "integer"]),
    ("bad choice", _edit(_set("a1", function="swish")), ["'a1'", "function", "silu"]),
    ("dangling edge", _edit(_add_edge("c1", "ghost")), ["'ghost'", "remove the edge"]),
    ("cycle", _edit(_add_edge("a3", "c3", 1)), ["'c3'", "cycle", "remove one"]),
    ("two edges into one port",
     _edit(_chain(_add_node("merge", "Add", {}, [("s2", 0)]), _add_edge("a1", "merge", 0))),
     ["'merge'", "port 0", "remove one"]),
    ("Linear after [C,H,W]", _edit(_rewire("s4", "f5")),
     ["'f5'", "[16,5,5]", "insert Flatten or GlobalAvgPool"]),
    ("Add of different shapes",
     _edit(_add_node("sum", "Add", {}, [("a1", 0), ("s2", 1)])),
     ["'sum'", "[6,28,28] and [6,14,14] differ", "1×1 Conv2d projection with stride 2"]),
    ("same with an even kernel", _edit(_set("c3", kernel_size=4, padding="same")),
     ["'c3'", "odd kernel", "kernel_size 5 or 3"]),
    ("kernel larger than its input", _edit(_set("c3", kernel_size=15)),
     ["'c3'", "larger than", "smaller kernel_size"]),
    ("no Output", _edit(_remove_nodes("out")), ["no Output", "add one"]),
    ("duplicate id", _edit(lambda d: _node(d, "a3").update(id="a1")), ["'a1'", "twice", "rename"]),
    ("Input block with a wire into it",
     _edit(_chain(_add_node("input2", "Input", {}, []), _add_edge("input2", "input"))),
     ["'input'", "remove the wire"]),
]


@pytest.mark.parametrize("content, words", [b[1:] for b in BAD_INPUTS],
                         ids=[b[0] for b in BAD_INPUTS])
def test_bad_input_exits_1_with_node_and_fix(tmp_path, capsys, content, words):
    code = main(["summary", _write(tmp_path, content)])
    captured = capsys.readouterr()
    assert code == 1
    for word in words:
        assert word in captured.err, f"{word!r} missing from: {captured.err}"
    assert "Traceback" not in captured.err + captured.out


def test_errors_never_stop_the_rest_of_the_analysis(tmp_path, capsys):
    content = _edit(_chain(_set("c1", out_channels=0), _add_node("side", "Conv2d", {},
                                                                  [("input", 0)])))
    assert main(["summary", _write(tmp_path, content), "--json"]) == 1
    data = json.loads(capsys.readouterr().out)
    nodes = {n["id"]: n for n in data["nodes"]}
    assert nodes["c1"]["error"] and nodes["c1"]["output_shape"] is None
    assert nodes["c3"]["output_shape"] is None and nodes["c3"]["error"] is None
    assert nodes["side"]["output_shape"] == [16, 32, 32]
    assert [e["node"] for e in data["errors"]] == ["c1"]


def test_missing_file_is_exit_1(tmp_path, capsys):
    assert main(["summary", str(tmp_path / "nope.convas.json")]) == 1
    assert "no such file" in capsys.readouterr().err


def test_usage_error_is_exit_2(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["summary"])
    assert exc.value.code == 2
    with pytest.raises(SystemExit) as exc:
        main(["summary", "x.json", "--batch-size", "0"])
    assert exc.value.code == 2


def test_console_entry_point_has_no_traceback(tmp_path):
    """The installed `convas` script, as a user runs it."""
    bad = _write(tmp_path, _edit(_rewire("s4", "f5")))
    exe = [sys.executable, "-m", "designer"]
    run = subprocess.run([*exe, "summary", bad], capture_output=True, text=True, timeout=120)
    assert run.returncode == 1
    assert "insert Flatten or GlobalAvgPool" in run.stderr and "Traceback" not in run.stderr
    good = _write(tmp_path, LENET, "good.convas.json")
    run = subprocess.run([*exe, "summary", good, "--json"], capture_output=True, text=True,
                         timeout=120)
    assert run.returncode == 0 and json.loads(run.stdout)["total_params"] == 61706


def test_export_dynamic_size_refuses_flatten_naming_the_block(tmp_path, capsys):
    out = tmp_path / "lenet.onnx"
    assert main(["export", _write(tmp_path, LENET), "-o", str(out), "--dynamic-size"]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("convas: --dynamic-size needs a fully convolutional design")
    assert "flat (Flatten) fixes the input size" in captured.err
    assert "Traceback" not in captured.err and not out.exists()
