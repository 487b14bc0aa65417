"""File → Import… (SPEC §8): an ONNX file or a Python function opens as a new design,
laid out, with its weights as the last run's (export, predict, Start from weights);
a model Convas cannot express lists its operators; an open input size asks for C,H,W;
a broken file says so."""

from __future__ import annotations

import contextlib
import io
import warnings
from pathlib import Path

import numpy as np
import PySide6  # noqa: F401  (Qt before torch-using modules)
import torch
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest
from torch import nn

from engine import compile_graph
from engine.checkpoint import load_checkpoint
from engine.importers import parse_input_shape

torch.set_num_threads(1)


class Tiny(nn.Module):
    """A plain torch CNN (not from Convas); ``exotic`` adds an operator no block has."""

    def __init__(self, exotic: bool = False) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.pool = nn.MaxPool2d(2)
        self.fc = nn.Linear(4 * 8 * 8, 5)
        self.exotic = exotic

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.conv(x))
        if self.exotic:
            x = torch.abs(x)
        return self.fc(torch.flatten(self.pool(x), 1))


def tiny() -> nn.Module:
    """For the Python-reference import: ``this_file.py:tiny``."""
    torch.manual_seed(0)
    return Tiny().eval()


def export(model: nn.Module, path: Path, open_size: bool = False) -> Path:
    axes = {"x": {2: "h", 3: "w"}} if open_size else None
    with warnings.catch_warnings(), contextlib.redirect_stderr(io.StringIO()):
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (torch.randn(1, 3, 16, 16),), str(path), dynamo=False,
                          opset_version=13, input_names=["x"], dynamic_axes=axes)
    return path


def open_import(window):
    action = next(a for a in window.menuBar().actions()[0].menu().actions()
                  if a.text().replace("&", "").startswith("Import"))
    action.trigger()
    dialog = window._import_dialog
    assert dialog.isVisible()
    return dialog


def press_import(qtbot, dialog, model: str, shape: str = "") -> None:
    dialog.model.setText(model)
    dialog.shape.setText(shape)
    QTest.mouseClick(dialog.import_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not dialog.busy, timeout=60_000)


def test_import_onnx_opens_the_design_with_its_weights(window, qtbot, tmp_path):
    torch.manual_seed(1)
    model = Tiny().eval()
    path = export(model, tmp_path / "tiny.onnx")
    dialog = open_import(window)
    press_import(qtbot, dialog, str(path))
    assert not dialog.isVisible(), dialog.status.text()
    g, report = window.doc.graph, window.doc.report
    types = sorted(g.type_of(n) for n in g.nodes)
    assert types == sorted(["Input", "Conv2d", "Activation", "MaxPool2d", "Flatten", "Linear",
                            "Output"])
    assert report.ok and report.output_shape is not None and tuple(report.output_shape) == (5,)
    params = sum(p.numel() for p in model.parameters())
    assert report.total_params == report.trainable_params == params
    assert window.totals.text().startswith(f"{params:,} params")
    assert all(g.pos_of(n) is not None for n in g.nodes)         # laid out
    assert window.doc.path == "" and len(window.canvas.scene_.nodes) == len(g)
    # the weights are the "last run's": a checkpoint that fits, named by Start from weights
    dock = window.training
    assert dock.checkpoint is not None and dock.checkpoint.is_file()
    assert dock.trained() is not None
    assert g.training["init"] == str(dock.checkpoint)
    assert dock.panel.init_path.text() == str(dock.checkpoint)
    net = compile_graph(g).eval()
    net.load_state_dict(load_checkpoint(dock.checkpoint)["state_dict"])
    x = torch.randn(2, 3, 16, 16)
    np.testing.assert_allclose(net(x).detach().numpy(), model(x).detach().numpy(),
                               rtol=1e-4, atol=1e-5)
    assert "imported" in window.statusBar().currentMessage()
    # freezing a block of the import shows in the trainable count
    conv = next(n for n in g.nodes if g.type_of(n) == "Conv2d")
    window.doc.set_frozen([conv], True)
    assert window.doc.report.trainable_params == params - sum(
        p.numel() for p in model.conv.parameters())


def test_unsupported_model_lists_its_operators_and_changes_nothing(window, qtbot, tmp_path):
    path = export(Tiny(exotic=True).eval(), tmp_path / "exotic.onnx")
    before = window.doc.graph.to_dict()
    dialog = open_import(window)
    press_import(qtbot, dialog, str(path))
    assert dialog.isVisible() and dialog.unsupported.isVisible()
    rows = dialog.unsupported_rows()
    assert [r[:2] for r in rows] == [("Abs", "1")] and "Abs" in rows[0][2]
    assert "no block for these operators" in dialog.status.text()
    assert window.doc.graph.to_dict() == before


def test_open_input_size_asks_for_c_h_w_then_imports(window, qtbot, tmp_path):
    path = export(tiny(), tmp_path / "open.onnx", open_size=True)
    dialog = open_import(window)
    press_import(qtbot, dialog, str(path))
    assert dialog.isVisible()
    assert "C,H,W" in dialog.status.text() and "--input-shape" not in dialog.status.text()
    press_import(qtbot, dialog, str(path), "3,16,16")
    assert not dialog.isVisible(), dialog.status.text()
    inputs = [n for n in window.doc.graph.nodes if window.doc.graph.type_of(n) == "Input"]
    p = window.doc.graph.params_of(inputs[0])
    assert (p["channels"], p["height"], p["width"]) == (3, 16, 16)


def test_python_reference_asks_for_a_shape_then_imports(window, qtbot):
    ref = f"{Path(__file__)}:tiny"
    dialog = open_import(window)
    press_import(qtbot, dialog, ref)
    assert dialog.isVisible() and "input size" in dialog.status.text()
    press_import(qtbot, dialog, ref, "3x16x16")
    assert not dialog.isVisible(), dialog.status.text()
    assert window.doc.report.total_params == sum(p.numel() for p in tiny().parameters())


def test_bad_input_gets_a_message_not_a_traceback(window, qtbot, tmp_path):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not a model at all\n" * 10)
    dialog = open_import(window)
    press_import(qtbot, dialog, str(bad))
    assert dialog.isVisible() and "bad.onnx" in dialog.status.text()
    assert "Traceback" not in dialog.status.text()
    press_import(qtbot, dialog, str(tmp_path / "missing.onnx"))
    assert "is not a file" in dialog.status.text()
    press_import(qtbot, dialog, str(bad), "3,16")
    assert "is not C,H,W" in dialog.status.text()
    dialog.reject()
    assert len(window.doc.graph) == 0


def test_shape_parsing_and_the_shape_question():
    assert parse_input_shape("") is None and parse_input_shape(" 3, 32 ,32 ") == (3, 32, 32)
    assert parse_input_shape("1×28×28") == (1, 28, 28)
    for text in ("3,32", "0,1,1", "a,b,c"):
        try:
            parse_input_shape(text)
        except ValueError as exc:
            assert "C,H,W" in str(exc)
        else:
            raise AssertionError(text)
