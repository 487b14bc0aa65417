"""``convas export`` and File → Export are one export: the same design and weights give
the same files (the .py text, the .pt weights tensor by tensor, the ONNX graph and its
outputs in onnxruntime) and the same message, and fail with the same words."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import PySide6  # noqa: F401  (Qt before pyqtgraph, always)
import pytest
import torch
from onnx import numpy_helper
from PySide6.QtWidgets import QFileDialog, QMessageBox

from designer.cli import main
from engine import Graph, compile_graph
from engine.checkpoint import load_checkpoint, save_checkpoint

XO = "resources/templates/x_vs_o.convas.json"
MENU = {"onnx": "&ONNX…", "pytorch": "&PyTorch .py…", "checkpoint": "&Checkpoint (trained "
                                                                   "weights)…"}


@pytest.fixture
def weights(tmp_path) -> Path:
    """A run's checkpoint of the X-vs-O design, with seeded (not default) weights."""
    graph = Graph.load(XO)
    torch.manual_seed(1)
    model = compile_graph(graph)
    with torch.no_grad():
        model.bn1.running_var.uniform_(0.5, 2.0)
    return save_checkpoint(tmp_path / "run" / "model.pt", graph, model.state_dict(),
                           epoch=2, classes=["x", "o"], mean=[0.1], std=[0.3],
                           optimizer={"state": {}, "param_groups": []})


class Gui:
    """File → Export as a person uses it: the menu entry, the save dialog answered with
    ``path``, the message box read."""

    def __init__(self, window, monkeypatch) -> None:
        self.window = window
        self.shown: list[tuple[str, str]] = []
        self.answer = ""
        monkeypatch.setattr(QFileDialog, "getSaveFileName",
                            staticmethod(lambda *args, **kwargs: (self.answer, "")))
        for kind in ("information", "warning"):
            monkeypatch.setattr(QMessageBox, kind, staticmethod(
                lambda parent, title, text, *rest, kind=kind: self.shown.append((kind, text))))

    def export(self, fmt: str, path: Path) -> tuple[str, str]:
        self.answer = str(path)
        action = next(a for a in self.window._export_menu.actions() if a.text() == MENU[fmt])
        assert action.isEnabled()
        action.trigger()
        return self.shown.pop()


def cli(capsys, *args: str) -> tuple[int, str, str]:
    code = main(["export", XO, *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture
def gui(window, monkeypatch, weights) -> Gui:
    window.doc.new_from(Graph.loads(Path(XO).read_text("utf-8"), XO))
    window.training.checkpoint = weights  # as a finished run leaves it
    return Gui(window, monkeypatch)


def test_py_export_is_the_same_file_and_weights_both_ways(gui, weights, tmp_path, capsys):
    (tmp_path / "cli").mkdir()
    (tmp_path / "gui").mkdir()
    code, out, err = cli(capsys, "-o", str(tmp_path / "cli" / "xo.py"), "--weights", str(weights))
    assert code == 0 and err == ""
    kind, message = gui.export("pytorch", tmp_path / "gui" / "xo.py")
    assert kind == "information"
    assert sorted(p.name for p in (tmp_path / "cli").iterdir()) == ["xo.pt", "xo.py"]
    assert sorted(p.name for p in (tmp_path / "gui").iterdir()) == ["xo.pt", "xo.py"]
    assert (tmp_path / "cli" / "xo.py").read_text() == (tmp_path / "gui" / "xo.py").read_text()
    by_cli, by_gui = (load_checkpoint(tmp_path / d / "xo.pt") for d in ("cli", "gui"))
    run = load_checkpoint(weights)["state_dict"]
    assert by_cli["state_dict"].keys() == by_gui["state_dict"].keys() == run.keys()
    for key, tensor in run.items():
        assert torch.equal(by_cli["state_dict"][key], tensor), key
        assert torch.equal(by_gui["state_dict"][key], tensor), key
    assert by_cli["classes"] == by_gui["classes"] == ["x", "o"]
    # one function writes the message: only the folder differs
    assert message == out.strip().replace(str(tmp_path / "cli"), str(tmp_path / "gui"))
    assert "trained weights" in message and "xo.pt" in message
    assert gui.window.statusBar().currentMessage() == message


def test_onnx_export_is_the_same_model_both_ways(gui, weights, tmp_path, capsys):
    code, out, _ = cli(capsys, "-o", str(tmp_path / "cli.onnx"), "--weights", str(weights))
    assert code == 0
    kind, message = gui.export("onnx", tmp_path / "gui.onnx")  # runs in a child process
    assert kind == "information"
    assert message == out.strip().replace("cli.onnx", "gui.onnx")
    models = [onnx.load(str(tmp_path / f"{side}.onnx")) for side in ("cli", "gui")]
    graphs = [m.graph for m in models]
    assert [n.op_type for n in graphs[0].node] == [n.op_type for n in graphs[1].node]
    assert [i.name for i in graphs[0].input] == [i.name for i in graphs[1].input]
    inits = [{t.name: numpy_helper.to_array(t) for t in g.initializer} for g in graphs]
    assert inits[0].keys() == inits[1].keys() and inits[0]
    for name, array in inits[0].items():
        np.testing.assert_array_equal(array, inits[1][name], err_msg=name)
    x = np.random.default_rng(0).standard_normal((4, 1, 32, 32)).astype(np.float32)
    outputs = []
    for side in ("cli", "gui"):
        session = ort.InferenceSession(str(tmp_path / f"{side}.onnx"),
                                       providers=["CPUExecutionProvider"])
        outputs.append(session.run(None, {session.get_inputs()[0].name: x})[0])
    np.testing.assert_array_equal(outputs[0], outputs[1])
    model = compile_graph(Graph.load(XO)).eval()  # and they carry the run's weights
    model.load_state_dict(load_checkpoint(weights)["state_dict"])
    np.testing.assert_allclose(outputs[0], model(torch.from_numpy(x)).detach().numpy(),
                               rtol=1e-4, atol=1e-5)


def test_checkpoint_export_and_failures_read_the_same_both_ways(gui, weights, tmp_path,
                                                               capsys):
    code, out, _ = cli(capsys, "-o", str(tmp_path / "cli.pt"), "--weights", str(weights))
    assert code == 0
    kind, message = gui.export("checkpoint", tmp_path / "gui.pt")
    assert kind == "information"
    assert (tmp_path / "cli.pt").read_bytes() == (tmp_path / "gui.pt").read_bytes() \
        == weights.read_bytes()
    assert message == out.strip().replace("cli.pt", "gui.pt")
    # a folder that does not exist: the same clear message, nothing written, no traceback
    missing = tmp_path / "no" / "such" / "xo.py"
    code, _, err = cli(capsys, "-o", str(missing), "--weights", str(weights))
    kind, failure = gui.export("pytorch", missing)
    assert code == 1 and kind == "warning"
    assert err == f"convas: {failure}\n" and "does not exist" in failure
    assert "Traceback" not in err and not (tmp_path / "no").exists()


def test_cli_export_offers_the_gui_formats(capsys, tmp_path):
    with pytest.raises(SystemExit):
        main(["export", "-h"])
    assert "{onnx,pytorch,checkpoint}" in capsys.readouterr().out
    code, _, err = cli(capsys, "-o", str(tmp_path / "x.pt"))
    assert code == 1 and "needs trained weights" in err and "Traceback" not in err
    assert list(tmp_path.iterdir()) == []
