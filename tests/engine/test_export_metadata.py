"""ONNX metadata (SPEC §7): an exported model says how to use it in its
``metadata_props``: ``convas.task``, ``convas.classes`` (JSON) and ``convas.preprocess``
(JSON), from the run's checkpoint when the export carries its weights, and otherwise
only what the design itself says (no class names, no normalisation made up)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from data_fixtures import squares_dataset
from test_train_segmentation import CLASSES, fcn

from engine import Graph, compile_graph
from engine.checkpoint import load_checkpoint
from engine.export import export_design, export_onnx
from engine.train import Trainer
from engine.train_config import TrainConfig
from engine.train_events import DoneEvent

torch.set_num_threads(1)
LENET = "resources/templates/lenet5.convas.json"


def metadata(path: Path) -> dict[str, str]:
    return {p.key: p.value for p in onnx.load(str(path)).metadata_props}


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    """A segmentation run's model.pt, as convas train writes it (one short epoch)."""
    out = tmp_path_factory.mktemp("run")
    cfg = TrainConfig(epochs=1, batch_size=16, optimizer="adam", lr=0.01, device="cpu")
    result = Trainer(fcn(), cfg, dataset=squares_dataset(32, 16), out_dir=out).run()
    assert isinstance(result, DoneEvent), getattr(result, "reason", "")
    return out / "model.pt"


def test_a_trained_export_says_the_task_classes_and_preprocessing_of_its_run(
        checkpoint, tmp_path):
    path = tmp_path / "seg.onnx"
    result = export_design(fcn(), path, weights=checkpoint)
    assert result.trained and result.ok
    saved = load_checkpoint(checkpoint)
    meta = metadata(path)
    assert meta["convas.task"] == "segmentation"
    assert json.loads(meta["convas.classes"]) == CLASSES
    preprocess = json.loads(meta["convas.preprocess"])
    assert preprocess == saved["preprocess"]
    assert preprocess["channels"] == 1 and preprocess["size"] == [16, 16]
    assert len(preprocess["mean"]) == len(preprocess["std"]) == 1
    # what the metadata says is enough to use the model: an image preprocessed with it
    # in onnxruntime gives what the trained model gives on the run's own normalisation
    data = squares_dataset(32, 16)
    image = data.val.x[:2]
    x = ((image.numpy() / 255 - preprocess["mean"][0]) / preprocess["std"][0])
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (out,) = session.run(None, {session.get_inputs()[0].name: x.astype(np.float32)})
    model = compile_graph(fcn())
    model.load_state_dict(saved["state_dict"])
    with torch.no_grad():
        expected = model.eval()((image.float() / 255 - data.mean[0]) / data.std[0]).numpy()
    np.testing.assert_allclose(out, expected, atol=1e-4)


def test_an_untrained_export_says_only_what_the_design_says(tmp_path):
    path = tmp_path / "seg.onnx"
    result = export_design(fcn(size=24), path)
    assert not result.trained
    meta = metadata(path)
    assert meta["convas.task"] == "segmentation"
    assert "convas.classes" not in meta  # only a count is known, not names
    assert json.loads(meta["convas.preprocess"]) == {"channels": 1, "size": [24, 24]}


def test_weights_replaced_by_fresh_ones_do_not_lend_their_metadata(checkpoint, tmp_path):
    """The application's last run, outdated by an edit (three classes now): the export
    carries fresh weights, so the run's class names no longer describe the model."""
    path = tmp_path / "seg3.onnx"
    result = export_design(fcn(classes=3), path, weights=checkpoint, if_unfit="untrained")
    assert not result.trained
    meta = metadata(path)
    assert meta["convas.task"] == "segmentation" and "convas.classes" not in meta
    assert "mean" not in json.loads(meta["convas.preprocess"])


def test_a_classifier_exported_directly_says_its_task_and_input(tmp_path):
    path = tmp_path / "lenet.onnx"
    export_onnx(Graph.load(LENET), path, input_shape=(1, 28, 28), check_batches=(2,))
    meta = metadata(path)
    assert meta["convas.task"] == "classification"
    assert json.loads(meta["convas.preprocess"]) == {"channels": 1, "size": [28, 28]}
