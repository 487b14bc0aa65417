"""The model templates shipped in ``resources/templates``: each one loads, analyses
cleanly with the published parameter count, compiles to a module with the same count,
and runs a forward pass."""

from __future__ import annotations

import json
from importlib import resources

import pytest

from engine import Graph, analyze, compile_graph

TEMPLATE_DIR = resources.files("resources") / "templates"
SUFFIX = ".convas.json"


def _template_names() -> list[str]:
    return sorted(t.name.removesuffix(SUFFIX) for t in TEMPLATE_DIR.iterdir()
                  if t.name.endswith(SUFFIX))


# Total parameters, as torchvision's models count them (sum(p.numel())).
EXPECTED_PARAMS = {
    "lenet5": 61_706,
    "alexnet": 61_100_840,
    "vgg16": 138_357_544,
    # the same network written with blocks made of blocks (Stage2, Stage3, ConvReLU)
    "vgg16_stages": 138_357_544,
    "resnet18": 11_689_512,
    "resnet18_blocks": 11_689_512,  # written with blocks made of blocks (Layer, Basic, …)
    "resnet50": 25_557_032,
    # GoogLeNet as in the paper's table (5×5 convs, ReLU, no BN, no aux classifiers):
    # 6,998,552. torchvision's googlenet (BN, 3×3 in place of 5×5) has 6,624,904.
    "googlenet": 6_998_552,
    "densenet121": 7_978_856,
    "mobilenetv2": 3_504_872,
    # conv 8 / 16 / 32, each with BatchNorm, ReLU and 2×2 max pool, then Linear(512, 2):
    # small enough to train in seconds on a CPU.
    "x_vs_o": 7_026,
    # conv 32 / 32 / 64 on scikit-learn's 1×8×8 digits, one max pool, Linear(1024, 10)
    "digits_cnn": 38_570,
    # segmentation on shapes-seg (1×64×64, 6 classes), small enough to train on a CPU:
    # a U-Net of 8 / 16 / 32 / 64 channels (two conv-BN-ReLU a level, ConvTranspose2d up,
    # Concat skips) and an FCN-8s (five conv stages with pooling, fc6/fc7 as convolutions,
    # 1×1 score layers, ConvTranspose2d ×2, ×2, ×8 with the pool4 and pool3 scores added)
    "unet_shapes": 121_078,
    "fcn_shapes": 273_812,
    # detection on shapes-det (1×64×64, 5 classes): conv 16 / 32 / 64, each with BatchNorm,
    # ReLU and 2×2 max pool, two conv 128 on the 8×8 grid, a 1×1 head of 3 × (5 + 5)
    "yolo_shapes": 248_974,
}

IMAGENET = {"alexnet", "vgg16", "vgg16_stages", "resnet18_blocks", "resnet18", "resnet50",
            "googlenet", "densenet121", "mobilenetv2"}
# Add has no weights, so the totals above cannot tell a missing skip connection.
EXPECTED_ADDS = {"mobilenetv2": 10, "fcn_shapes": 2}  # FCN-8s: the pool4 and pool3 skips
OUTPUT_SHAPES = {"lenet5": (10,), "x_vs_o": (2,), "digits_cnn": (10,)} | {
    n: (1000,) for n in IMAGENET} | {n: (6, 64, 64) for n in ("unet_shapes", "fcn_shapes")} | {
    "yolo_shapes": (30, 8, 8)}
SEGMENTATION = {"unet_shapes", "fcn_shapes"}
DETECTION = {"yolo_shapes"}


def _raw(name: str) -> dict:
    return json.loads((TEMPLATE_DIR / (name + SUFFIX)).read_text(encoding="utf-8"))


def _load(name: str) -> Graph:
    with resources.as_file(TEMPLATE_DIR / (name + SUFFIX)) as path:
        return Graph.load(path)


def _edge_key(edge: dict) -> tuple[str, str, int]:
    return edge["from"], edge["to"], edge.get("port", 0)


def test_every_template_is_present() -> None:
    assert set(_template_names()) == set(EXPECTED_PARAMS)


@pytest.mark.parametrize("name", _template_names())
def test_template_file_is_tidy(name: str) -> None:
    raw = _raw(name)
    assert raw["format"] == "convas.graph" and raw["version"] == 1
    assert isinstance(raw["name"], str) and raw["name"].strip()
    assert isinstance(raw["training"], dict) and raw["training"]
    nodes = raw["nodes"]
    ids = [n["id"] for n in nodes]
    assert len(set(ids)) == len(ids)
    positions = [tuple(n["pos"]) for n in nodes]  # every node has a position ...
    assert all(len(p) == 2 for p in positions)
    assert len(set(positions)) == len(positions)  # ... and no two share one
    index = {nid: i for i, nid in enumerate(ids)}
    for edge in raw["edges"]:  # nodes are listed in topological order
        assert index[edge["from"]] < index[edge["to"]], edge
    assert [n["type"] for n in nodes].count("Output") == 1
    assert nodes[-1]["type"] == "Output"
    assert [n["type"] for n in nodes].count("Add") == EXPECTED_ADDS.get(name, 0)
    # Loading keeps everything: saving the loaded graph gives the same document (the
    # order of the edges carries no meaning).
    saved = _load(name).to_dict()
    assert sorted(saved.pop("edges"), key=_edge_key) == sorted(raw["edges"], key=_edge_key)
    assert saved == {k: v for k, v in raw.items() if k != "edges"}


@pytest.mark.parametrize("name", _template_names())
def test_template_analyses_and_compiles(name: str) -> None:
    import torch

    graph = _load(name)
    report = analyze(graph)
    assert report.errors == []
    assert report.warnings == []
    assert report.total_params == EXPECTED_PARAMS[name]
    assert report.output_shape == OUTPUT_SHAPES[name]
    (input_id,) = report.input_ids
    in_shape = report.nodes[input_id].output_shape
    if name in IMAGENET:
        assert in_shape == (3, 224, 224)
    task = graph.params_of(report.output_id).get("task", "classification")
    assert task == ("segmentation" if name in SEGMENTATION else
                    "detection" if name in DETECTION else "classification")

    model = compile_graph(graph, report)
    assert sum(p.numel() for p in model.parameters()) == EXPECTED_PARAMS[name]
    torch.manual_seed(0)
    model.eval()
    with torch.no_grad():
        y = model(torch.randn(2, *in_shape))
    assert tuple(y.shape) == (2, *OUTPUT_SHAPES[name])  # at the full 224×224 for ImageNet
    assert torch.isfinite(y).all()


@pytest.mark.parametrize(("name", "merge", "skips"), [("unet_shapes", "Concat", 3),
                                                     ("fcn_shapes", "Add", 2)])
def test_segmentation_templates_are_set_up_for_shapes_seg(name: str, merge: str,
                                                          skips: int) -> None:
    """Set up for shapes-seg, with the skips the notes draw and no size-bound block."""
    from engine.fcn import fully_convolutional_blocker

    assert _raw(name)["training"]["dataset"] == "shapes-seg"
    graph = _load(name)
    types = [graph.type_of(n) for n in graph.nodes]
    assert "ConvTranspose2d" in types and types.count(merge) == skips
    assert fully_convolutional_blocker(graph) is None
