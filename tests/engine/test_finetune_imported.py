"""The fine-tuning recipe of issue 11 end to end, through an import: a trained
classifier leaves as an ONNX file, comes back with `import_onnx`, gets a new last
Linear and a frozen rest, and trains on new digits. Its frozen tensors stay
bit-identical, and it beats the same imported design trained from scratch."""

from __future__ import annotations

import warnings

import numpy as np
import torch
from test_finetune import digits_net, train

from engine import Graph, compile_graph
from engine.checkpoint import load_checkpoint, save_checkpoint
from engine.data.builtin import load_digits
from engine.importers import import_onnx
from engine.train_events import DoneEvent, ReadyEvent

torch.set_num_threads(1)


def _with_new_head(g: Graph, classes: int) -> tuple[Graph, str]:
    """The imported design with its last Linear replaced by a fresh one (new id), and
    every other block frozen: what a user does after File → Import."""
    g = g.copy()
    output = next(n for n in g.nodes if g.type_of(n) == "Output")
    old = g.inputs_of(output)[0][1]
    assert g.type_of(old) == "Linear"
    feeding = g.inputs_of(old)[0][1]
    g.remove_node(old)
    g.add_node("head", "Linear", {"out_features": classes})
    g.add_edge(feeding, "head")
    g.add_edge("head", output)
    for n in g.nodes:
        if n != "head":
            g.set_frozen(n, True)
    return g, old


def test_an_imported_classifier_fine_tuned_with_a_new_head(tmp_path):
    raw = load_digits()
    names = np.array(raw.classes)
    np.savez(tmp_path / "source.npz", x=raw.x[0::2], y=raw.y[0::2], classes=names)
    np.savez(tmp_path / "target.npz", x=raw.x[1::2], y=raw.y[1::2], classes=names)
    source = digits_net(width=32)
    train(source, tmp_path / "source", dataset=str(tmp_path / "source.npz"), limit=None,
          epochs=6, batch_size=32, lr=0.01)
    model = compile_graph(source).eval()
    model.load_state_dict(load_checkpoint(tmp_path / "source" / "model.pt")["state_dict"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (torch.randn(1, 1, 8, 8),), str(tmp_path / "digits.onnx"),
                          dynamo=False, opset_version=17)

    imported = import_onnx(tmp_path / "digits.onnx")
    save_checkpoint(tmp_path / "imported.pt", imported.graph, imported.state_dict)
    tuned, old_head = _with_new_head(imported.graph, 5)
    settings = {"dataset": str(tmp_path / "target.npz"), "classes": list("56789"),
                "val_fraction": 0.5, "limit": 25, "epochs": 4, "batch_size": 8,
                "optimizer": "sgd", "lr": 0.03, "momentum": 0.9, "weight_decay": 1e-4}
    trainer, events = train(tuned, tmp_path / "tuned", init=str(tmp_path / "imported.pt"),
                            **settings)
    assert isinstance(events[-1], DoneEvent), events[-1]
    ready = next(e for e in events if isinstance(e, ReadyEvent))
    assert ready.init_fresh == ["head"] and ready.init_loaded  # every imported weight
    after = trainer.model.state_dict()
    for key, value in imported.state_dict.items():
        if not key.startswith(old_head + "."):
            assert torch.equal(after[key], value), key
    tuned_accuracy = events[-1].metrics[-1]["val_accuracy"]

    scratch, _ = _with_new_head(imported.graph, 5)
    for n in scratch.nodes:
        scratch.set_frozen(n, False)
    _, events = train(scratch, tmp_path / "scratch", **settings)
    scratch_accuracy = events[-1].metrics[-1]["val_accuracy"]
    assert tuned_accuracy > 0.7
    assert tuned_accuracy > scratch_accuracy + 0.2, (tuned_accuracy, scratch_accuracy)
