"""``convas import`` (SPEC §8): writes the design and its checkpoint, or exits 1 with a
message (and writes nothing); usage errors exit 2."""

from __future__ import annotations

import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch

from designer.cli import main
from designer.cli_import import checkpoint_path
from engine import Graph, compile_graph
from engine.checkpoint import load_checkpoint


class Small(torch.nn.Module):
    def __init__(self, exotic: bool = False) -> None:
        super().__init__()
        self.exotic = exotic
        self.conv = torch.nn.Conv2d(3, 8, 3, padding=1)
        self.bn = torch.nn.BatchNorm2d(8)
        self.fc = torch.nn.Linear(8, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.bn(self.conv(x)))
        if self.exotic:
            x = torch.abs(torch.abs(x))
        return self.fc(torch.flatten(torch.nn.functional.adaptive_avg_pool2d(x, 1), 1))


def small() -> torch.nn.Module:
    torch.manual_seed(0)
    model = Small()
    with torch.no_grad():
        model.bn.running_mean.uniform_(-0.5, 0.5)
        model.bn.running_var.uniform_(0.5, 1.5)
    return model.eval()


def _export(path: Path, model: torch.nn.Module, dynamic_hw: bool = False) -> Path:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (torch.randn(1, 3, 16, 16),), str(path), dynamo=False,
                          opset_version=17, input_names=["x"],
                          dynamic_axes={"x": {2: "h", 3: "w"}} if dynamic_hw else None)
    return path


def _written(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if not p.name.endswith(".onnx"))


def test_import_writes_the_design_and_its_checkpoint(tmp_path, capsys):
    model_file = _export(tmp_path / "small.onnx", small())
    out = tmp_path / "small.convas.json"
    assert main(["import", str(model_file), "-o", str(out)]) == 0
    printed = capsys.readouterr().out
    assert printed.startswith("imported small.onnx: 7 blocks") and "parameters" in printed
    assert f"wrote {out}" in printed
    graph = Graph.load(out)
    checkpoint = load_checkpoint(checkpoint_path(out))
    assert checkpoint_path(out) == tmp_path / "small.pt"
    assert checkpoint["graph"] == graph.to_dict()
    assert checkpoint["preprocess"] == {"channels": 3, "size": [16, 16]}
    net = compile_graph(graph)
    net.load_state_dict(checkpoint["state_dict"], strict=True)
    net.eval()
    x = np.random.default_rng(0).standard_normal((1, 3, 16, 16)).astype(np.float32)
    session = ort.InferenceSession(str(model_file), providers=["CPUExecutionProvider"])
    (want,) = session.run(None, {"x": x})
    with torch.inference_mode():
        got = net(torch.from_numpy(x)).numpy()
    assert np.abs(got - want).max() <= 1e-4 * np.abs(want).max()
    assert main(["summary", str(out)]) == 0  # a design like any other


def test_import_of_a_python_function(tmp_path, capsys):
    out = tmp_path / "py.convas.json"
    ref = f"{Path(__file__)}:small"
    assert main(["import", ref, "-o", str(out), "--input-shape", "3,16,16"]) == 0
    assert "imported" in capsys.readouterr().out
    assert _written(tmp_path) == ["py.convas.json", "py.pt"]
    graph = Graph.load(out)
    assert {"conv", "bn", "fc"} <= set(graph.nodes)


def test_unsupported_operators_exit_1_with_the_list_and_write_nothing(tmp_path, capsys):
    model_file = _export(tmp_path / "exotic.onnx", Small(exotic=True).eval())
    assert main(["import", str(model_file), "-o", str(tmp_path / "x.convas.json")]) == 1
    err = capsys.readouterr().err
    assert "Abs × 2 (e.g. node '/Abs')" in err and "nothing was written" in err
    assert _written(tmp_path) == []


@pytest.mark.parametrize("content", [b"not a model at all\n" * 10, "truncated"])
def test_unreadable_files_exit_1_without_a_traceback(tmp_path, capsys, content):
    bad = tmp_path / "bad.onnx"
    if content == "truncated":
        good = _export(tmp_path / "good.onnx", small()).read_bytes()
        content = good[: len(good) * 2 // 3]
    bad.write_bytes(content)
    assert main(["import", str(bad), "-o", str(tmp_path / "x.convas.json")]) == 1
    captured = capsys.readouterr()
    assert "is not a readable ONNX model" in captured.err and "Traceback" not in captured.err
    assert _written(tmp_path) == []


def test_unreadable_file_from_the_command_line_process(tmp_path):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"\x08\x07garbage" * 50)
    result = subprocess.run([sys.executable, "-m", "designer", "import", str(bad), "-o",
                             str(tmp_path / "x.convas.json")], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 1
    assert "bad.onnx" in result.stderr and "Traceback" not in result.stderr


def test_open_input_size_asks_for_input_shape(tmp_path, capsys):
    model_file = _export(tmp_path / "open.onnx", small(), dynamic_hw=True)
    out = tmp_path / "open.convas.json"
    assert main(["import", str(model_file), "-o", str(out)]) == 1
    assert "--input-shape C,H,W" in capsys.readouterr().err
    assert not out.exists()
    assert main(["import", str(model_file), "-o", str(out), "--input-shape", "3,24,20"]) == 0
    graph = Graph.load(out)
    inputs = [n for n in graph.nodes if graph.type_of(n) == "Input"]
    assert graph.params_of(inputs[0]) == {"channels": 3, "height": 24, "width": 20}


@pytest.mark.parametrize("shape", ["3,16", "3,a,16", "0,16,16"])
def test_a_bad_input_shape_is_a_usage_error(tmp_path, capsys, shape):
    with pytest.raises(SystemExit) as info:
        main(["import", "m.onnx", "-o", str(tmp_path / "x.convas.json"), "--input-shape",
              shape])
    assert info.value.code == 2
    assert "C,H,W" in capsys.readouterr().err


def test_an_unwritable_output_exits_1(tmp_path, capsys):
    model_file = _export(tmp_path / "small.onnx", small())
    blocker = tmp_path / "file"
    blocker.write_text("")
    assert main(["import", str(model_file), "-o", str(blocker / "x.convas.json")]) == 1
    assert "cannot write" in capsys.readouterr().err
