"""Edit → Make Fully Convolutional (issue 10): one undoable edit that turns LeNet-5's
Flatten → Linear head into convolutions, keeps the parameter count and the answers at
the trained size, carries the last run's weights (model.fcn.pt beside model.pt, used
while the converted design is current) and runs at a larger input; Undo gives back the
very design and its own weights."""

from __future__ import annotations

from importlib import resources

import pytest
import torch
from PySide6.QtWidgets import QMessageBox

from engine import Graph, analyze, compile_graph
from engine.checkpoint import load_checkpoint, save_checkpoint

torch.set_num_threads(1)
CLASSES = [str(d) for d in range(10)]


def template(name: str) -> Graph:
    text = (resources.files("resources") / "templates" / f"{name}.convas.json").read_text()
    return Graph.loads(text, name)


def checkpoint_for(graph: Graph, path, seed: int = 0):
    """A run's model.pt for ``graph``: fresh weights with non-zero biases, as training
    leaves them, and the keys a run writes (task, classes, preprocessing)."""
    torch.manual_seed(seed)
    model = compile_graph(graph)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    size = [32, 32]
    save_checkpoint(path, graph, model.state_dict(), task="classification", classes=CLASSES,
                    mean=[0.5], std=[0.25], epoch=1, optimizer={"state": {}},
                    preprocess={"channels": 1, "size": size, "mean": [0.5], "std": [0.25]})
    return model.eval()


def edit_action(window, text: str):
    edit = next(a.menu() for a in window.menuBar().actions() if a.text() == "&Edit")
    return next(a for a in edit.actions() if a.text() == text)


@pytest.fixture
def shown(monkeypatch):
    """The messages the command shows, instead of modal boxes."""
    said: list[str] = []
    for kind in ("information", "warning"):
        monkeypatch.setattr(QMessageBox, kind, lambda *a, **k: said.append(a[2]))
    return said


def test_lenet_becomes_convolutional_with_its_trained_weights_and_undo_restores_it(
        window, shown, tmp_path):
    lenet = template("lenet5")
    window.doc.new_from(lenet.copy())
    run = tmp_path / "run"
    original = checkpoint_for(lenet, run / "model.pt")
    window.training.checkpoint = run / "model.pt"   # what the dock keeps after a run
    before = window.doc.to_dict()
    params = window.doc.report.total_params
    assert window.training.trained().path == run / "model.pt"

    edit_action(window, "Make &Fully Convolutional").trigger()

    graph = window.doc.graph
    assert [graph.type_of(n) for n in graph.nodes].count("Flatten") == 0
    assert graph.type_of("f5") == "Conv2d" and graph.params_of("f5")["kernel_size"] == 5
    assert graph.type_of("f7") == "Conv2d" and graph.params_of("f7")["kernel_size"] == 1
    assert window.doc.report.total_params == params
    assert window.doc.report.output_shape == (10, 1, 1)
    (message,) = shown
    assert f"{params:,} before, {params:,} after (unchanged)" in message
    assert "f5: Linear 400→120 became a Conv2d with a 5×5 kernel" in message
    assert "model.fcn.pt" in window.statusBar().currentMessage()
    # the canvas follows: the Flatten's card is gone, f5's card is a convolution now
    cards = window.canvas.scene_.nodes
    assert set(cards) == set(graph.nodes)
    assert cards["f5"].view.type == "Conv2d"
    assert set(window.canvas.scene_.edges) == {(e.src, e.dst, e.port) for e in graph.edges()}
    assert ("s4", "f5", 0) in window.canvas.scene_.edges

    # the converted weights: saved beside the run's, with its task, classes and
    # preprocessing, and the ones the application now uses
    converted = load_checkpoint(run / "model.fcn.pt")
    assert (converted["task"], converted["classes"]) == ("classification", CLASSES)
    assert converted["preprocess"]["mean"] == [0.5] and "optimizer" not in converted
    assert Graph.from_dict(converted["graph"]).to_dict()["nodes"] == graph.to_dict()["nodes"]
    trained = window.training.trained()
    assert trained.path == run / "model.fcn.pt"
    x = torch.rand(3, 1, 32, 32)
    with torch.no_grad():
        assert torch.allclose(trained.model(x).squeeze(-1).squeeze(-1), original(x),
                              atol=1e-5)

    # it runs at a larger input, where it gives a heat map
    bigger = graph.copy()
    bigger.set_param("input", "height", 48)
    bigger.set_param("input", "width", 40)
    report = analyze(bigger)
    assert not report.errors and report.output_shape == (10, 5, 3)
    model = compile_graph(bigger, report)
    model.load_state_dict(converted["state_dict"])
    with torch.no_grad():
        heat = model.eval()(torch.rand(1, 1, 48, 40))
    assert heat.shape == (1, 10, 5, 3)

    # Undo: the very design of before, and the run's own weights again
    window.undo_action.trigger()
    assert window.doc.to_dict() == before
    assert window.doc.report.total_params == params
    assert set(window.canvas.scene_.nodes) == {n["id"] for n in before["nodes"]}
    assert window.canvas.scene_.nodes["f5"].view.type == "Linear"
    assert set(window.canvas.scene_.edges) == {(e["from"], e["to"], e.get("port", 0))
                                               for e in before["edges"]}
    assert window.training.trained().path == run / "model.pt"
    window.redo_action.trigger()
    assert window.doc.graph.type_of("f5") == "Conv2d"
    assert window.training.trained().path == run / "model.fcn.pt"


def test_exports_use_the_converted_weights(window, shown, tmp_path):
    lenet = template("lenet5")
    window.doc.new_from(lenet)
    checkpoint_for(lenet, tmp_path / "run" / "model.pt", seed=1)
    window.training.checkpoint = tmp_path / "run" / "model.pt"
    assert window.make_fully_convolutional(interactive=False)
    assert window.export("checkpoint", str(tmp_path / "out.pt"))
    exported = load_checkpoint(tmp_path / "out.pt")["state_dict"]
    converted = load_checkpoint(tmp_path / "run" / "model.fcn.pt")["state_dict"]
    assert exported.keys() == converted.keys()
    assert all(torch.equal(exported[k], converted[k]) for k in converted)


def test_without_a_run_the_design_is_converted_untrained(window, shown):
    window.doc.new_from(template("lenet5"))
    params = window.doc.report.total_params
    assert window.make_fully_convolutional()
    assert window.doc.report.total_params == params
    assert "No trained weights fit the design" in shown[0]
    assert window.training.trained() is None


def test_a_design_without_a_dense_head_is_refused_with_the_reason(window, shown):
    window.doc.new_from(template("fcn_shapes"))
    before = window.doc.to_dict()
    edit_action(window, "Make &Fully Convolutional").trigger()
    assert len(shown) == 1
    assert "Cannot make the design fully convolutional: nothing to convert" in shown[0]
    assert "already runs on any input size" in shown[0]
    assert window.doc.to_dict() == before and window.doc.undo_stack.count() == 0


def test_a_design_with_errors_is_refused(window, shown):
    graph = template("lenet5")
    graph.set_param("f5", "out_features", 0)
    window.doc.new_from(graph)
    assert not window.make_fully_convolutional()
    assert "fix those listed under Problems" in shown[0]
    assert window.doc.undo_stack.count() == 0


def test_the_command_is_locked_while_a_run_uses_the_design(window):
    action = edit_action(window, "Make &Fully Convolutional")
    window._on_training_running(True)
    assert not action.isEnabled()
    window._on_training_running(False)
    assert action.isEnabled()
