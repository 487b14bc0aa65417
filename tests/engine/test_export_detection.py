"""Exporting a detector (SPEC §7): the ONNX file is the raw head with its anchors and
decoding rules in ``metadata_props``; the ``.py`` file carries ``decode``, ``nms`` and
``detect`` in plain torch with the anchors and class names as constants, and finds the
same boxes as the engine (engine.detection.yolo.detect, engine.detection.nms)."""

from __future__ import annotations

import ast
import importlib.util
import inspect
import json
from pathlib import Path
from types import ModuleType

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from model_helpers import trained_like

from engine import Graph, compile_graph
from engine.checkpoint import save_checkpoint
from engine.detection import yolo
from engine.detection.nms import batched_nms, nms
from engine.export import detection_source as carried
from engine.export import export_design, pytorch_source

torch.set_num_threads(1)
YOLO = "resources/templates/yolo_shapes.convas.json"
LENET = "resources/templates/lenet5.convas.json"
CLASSES = ["X", "O", "plus", "triangle", "square"]


@pytest.fixture(scope="module")
def graph() -> Graph:
    return Graph.load(YOLO)


@pytest.fixture(scope="module")
def anchors(graph: Graph) -> list[list[float]]:
    (out,) = [n for n in graph.nodes if graph.type_of(n) == "Output"]
    return [list(map(float, a)) for a in graph.params_of(out)["anchors"]]


def _weights(graph: Graph, seed: int = 0) -> dict[str, torch.Tensor]:
    """Seeded weights with BatchNorm statistics as a run leaves them."""
    return trained_like(graph, seed).state_dict()


@pytest.fixture(scope="module")
def checkpoint(graph: Graph, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("run") / "model.pt"
    preprocess = {"channels": 1, "size": [64, 64], "mean": [0.3], "std": [0.2]}
    return save_checkpoint(path, graph, _weights(graph), task="detection", epoch=2,
                           classes=CLASSES, preprocess=preprocess)


def _metadata(path: Path) -> dict[str, str]:
    return {p.key: p.value for p in onnx.load(str(path)).metadata_props}


def _import(path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"exported_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _head_outputs(seed: int, batch: int = 2, grid: int = 8, scale: float = 3.0
                  ) -> torch.Tensor:
    """Random head outputs [B, 3·(5+5), S, S] with confident and unsure cells alike."""
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(batch, 30, grid, grid, generator=generator) * scale


def _same_detections(got: list, expected: list) -> None:
    assert len(got) == len(expected)
    for (boxes, scores, labels), (e_boxes, e_scores, e_labels) in zip(got, expected,
                                                                       strict=True):
        assert torch.equal(labels, e_labels)
        torch.testing.assert_close(boxes, e_boxes, rtol=0, atol=1e-5)
        torch.testing.assert_close(scores, e_scores, rtol=0, atol=1e-6)


def test_onnx_export_is_the_raw_head_with_anchors_and_decoding_in_its_metadata(
        graph, anchors, tmp_path):
    path = tmp_path / "yolo.onnx"
    state = _weights(graph)
    result = export_design(graph, path, weights=state)
    assert result.ok and result.onnx.output_names == ["out"]

    model = compile_graph(graph)
    model.load_state_dict(state)
    x = torch.randn(3, 1, 64, 64, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected = model.eval()(x)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (out,) = session.run(None, {session.get_inputs()[0].name: x.numpy()})
    assert out.shape == (3, 30, 8, 8)  # the head itself: no decoding in the graph
    np.testing.assert_allclose(out, expected.numpy(), atol=1e-4, rtol=0)

    meta = _metadata(path)
    assert meta["convas.task"] == "detection"
    assert "convas.classes" not in meta  # a state_dict names no classes
    assert json.loads(meta["convas.preprocess"]) == {"channels": 1, "size": [64, 64]}
    assert json.loads(meta["convas.anchors"]) == anchors
    decode = json.loads(meta["convas.decode"])
    assert decode["num_anchors"] == 3 and decode["num_classes"] == 5
    assert decode["grid"] == [8, 8]
    assert "sigmoid" in decode["cx"] and "exp" in decode["w"] and "softmax" in decode["classes"]
    assert decode["iou_threshold"] == carried.IOU_THRESHOLD

    # what the metadata says is enough: onnxruntime's head, decoded with its anchors,
    # gives the boxes the engine finds in PyTorch's head
    h, w = json.loads(meta["convas.preprocess"])["size"]
    from_onnx = yolo.detect(torch.from_numpy(out), json.loads(meta["convas.anchors"]),
                            (h, w), decode["num_classes"], score_threshold=0.05)
    from_torch = yolo.detect(expected, anchors, (64, 64), 5, score_threshold=0.05)
    assert sum(len(s) for _, s, _ in from_torch) > 0
    for (b, s, c), (eb, es, ec) in zip(from_onnx, from_torch, strict=True):
        assert torch.equal(c, ec)
        torch.testing.assert_close(b, eb, rtol=0, atol=1e-3)
        torch.testing.assert_close(s, es, rtol=0, atol=1e-4)


def test_onnx_export_with_a_checkpoint_names_the_classes(graph, checkpoint, tmp_path):
    path = tmp_path / "yolo.onnx"
    assert export_design(graph, path, weights=checkpoint).ok
    meta = _metadata(path)
    assert json.loads(meta["convas.classes"]) == CLASSES
    assert json.loads(meta["convas.preprocess"])["mean"] == [0.3]
    assert json.loads(meta["convas.decode"])["num_classes"] == len(CLASSES)


def test_py_export_runs_with_torch_alone_and_finds_the_engines_boxes(
        graph, anchors, checkpoint, tmp_path):
    py = tmp_path / "detector.py"
    result = export_design(graph, py, weights=checkpoint)
    assert [p.name for p, _ in result.files] == ["detector.py", "detector.pt"]
    source = py.read_text("utf-8")
    imported = {a.name for node in ast.walk(ast.parse(source))
                if isinstance(node, ast.Import | ast.ImportFrom)
                for a in node.names} | {node.module for node in ast.walk(ast.parse(source))
                                        if isinstance(node, ast.ImportFrom)}
    assert imported <= {"__future__", "annotations", "torch", "nn"}, imported

    exported = _import(py)
    assert exported.ANCHORS == anchors
    assert exported.IMAGE_SIZE == (64, 64)
    assert exported.CLASSES == CLASSES
    model = exported.build_model()
    model.load_state_dict(torch.load(tmp_path / "detector.pt",
                                     weights_only=True)["state_dict"], strict=True)
    reference = compile_graph(graph)
    reference.load_state_dict(torch.load(checkpoint, weights_only=True)["state_dict"])
    x = torch.randn(2, 1, 64, 64, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        out = model.eval()(x)
        torch.testing.assert_close(out, reference.eval()(x), rtol=0, atol=1e-5)
    found = exported.detect(out, score_threshold=0.05)
    assert sum(len(s) for _, s, _ in found) > 0
    _same_detections(found, yolo.detect(out, anchors, (64, 64), 5, score_threshold=0.05))


@pytest.mark.parametrize(("seed", "grid", "score", "iou"), [
    (0, 8, 0.25, 0.5), (1, 8, 0.05, 0.3), (2, 16, 0.0, 0.5), (3, 5, 0.5, 0.7)])
def test_carried_detect_matches_the_engine_on_random_heads(anchors, seed, grid, score, iou):
    out = _head_outputs(seed, grid=grid)
    kwargs = dict(score_threshold=score, iou_threshold=iou)
    expected = yolo.detect(out, anchors, (64, 64), 5, **kwargs)
    got = carried.detect(out, anchors=anchors, image_size=(64, 64), **kwargs)
    _same_detections(got, expected)
    # the cases exercise what they claim: boxes found in every image, and with a zero
    # threshold on a 16×16 grid more candidates than detect keeps (its top-k path)
    assert all(len(s) > 0 for _, s, _ in expected)
    _, objectness, classes = yolo.decode(out, torch.tensor(anchors), (64, 64), 5)
    candidates = (objectness[..., None] * classes > score).flatten(1).sum(1)
    assert (candidates > carried.CANDIDATES).all() == (score == 0.0)


def test_carried_decode_matches_the_engine(anchors):
    out = _head_outputs(4, grid=6)
    out[0, 2, 1, 1] = out[1, 13, 2, 3] = 100.0  # wild tw, th: sizes are capped, not inf
    for got, expected in zip(carried.decode(out, anchors, (48, 48)),
                             yolo.decode(out, torch.tensor(anchors), (48, 48), 5),
                             strict=True):
        torch.testing.assert_close(got, expected, rtol=0, atol=1e-5)


def test_carried_detect_defaults_are_the_engines():
    defaults = {k: p.default for k, p in inspect.signature(yolo.detect).parameters.items()}
    assert defaults["score_threshold"] == carried.SCORE_THRESHOLD
    assert defaults["iou_threshold"] == carried.IOU_THRESHOLD
    assert defaults["max_detections"] == carried.MAX_DETECTIONS
    assert defaults["candidates"] == carried.CANDIDATES


@pytest.mark.parametrize("seed", range(4))
def test_carried_nms_keeps_what_the_engine_keeps(seed):
    generator = torch.Generator().manual_seed(seed)
    n = 300
    xy = torch.randint(0, 40, (n, 2), generator=generator).float()
    wh = torch.randint(0, 20, (n, 2), generator=generator).float()  # some empty boxes
    boxes = torch.cat((xy, xy + wh), 1)
    scores = torch.randint(0, 12, (n,), generator=generator).float() / 12  # many ties
    classes = torch.randint(0, 3, (n,), generator=generator)
    for iou in (0.0, 0.25, 0.5, 1.0):  # integer boxes put IoUs exactly at 0.25 and 0.5
        expected = batched_nms(boxes, scores, classes, iou)
        assert torch.equal(carried.nms(boxes, scores, iou, classes), expected)
        assert torch.equal(carried.nms(boxes, scores, iou), nms(boxes, scores, iou))
    assert 0 < len(batched_nms(boxes, scores, classes, 0.5)) < n
    empty = torch.zeros(0, 4)
    assert len(carried.nms(empty, torch.zeros(0), 0.5, torch.zeros(0, dtype=torch.long))) == 0


def test_untrained_py_export_names_no_classes(graph, tmp_path):
    py = tmp_path / "fresh.py"
    export_design(graph, py)
    exported = _import(py)
    assert exported.CLASSES is None
    out = exported.build_model().eval()(torch.zeros(1, 1, 64, 64))
    boxes, scores, labels = exported.detect(out, score_threshold=0.0)[0]
    assert boxes.shape[1] == 4 and len(scores) == len(labels) <= exported.MAX_DETECTIONS


def test_a_wrong_number_of_channels_is_a_clear_error():
    with pytest.raises(ValueError, match="not 3 anchors"):
        carried.decode(torch.zeros(1, 31, 4, 4))


def test_other_tasks_carry_no_detection_code():
    source = pytorch_source(Graph.load(LENET), classes=["a", "b"])
    assert "def detect" not in source and "ANCHORS" not in source
