"""ONNX import (SPEC §8): files from both of torch's exporters and hand-written ones.

The four zoo networks (plain PyTorch, random weights, random BatchNorm statistics) go
through the dynamo exporter (opset 18 and its default) and the legacy one (opsets 13
and 17), are imported, and the design's output must match onnxruntime's on the
original file. Small hand-written graphs cover what exporters write only sometimes:
auto_pad, asymmetric pads, shared and Identity'd initializers, Constant-fed shapes,
Gemm's transB/alpha/beta, MatMul + Add, external data.
"""

from __future__ import annotations

import hashlib
import os
from collections import Counter
from pathlib import Path

import import_helpers
import networkx as nx
import numpy as np
import onnx
import pytest
import torch
import torch_zoo
from graph_builders import build
from import_helpers import export, rel_diff, run_imported, run_onnx, sample
from onnx import TensorProto, helper, numpy_helper

from engine import analyze
from engine.importers import ImportModelError, NeedsInputShape, UnsupportedModel, import_onnx
from engine.spec import resolve_padding

# (network, exporter, opset): each exporter at two opsets, every network through both.
CASES = [("resnet18", "dynamo", 18), ("resnet18", "legacy", 13),
         ("mobilenet_v2", "dynamo", 18), ("mobilenet_v2", "legacy", 17),
         ("googlenet", "dynamo", None), ("googlenet", "legacy", 13),
         ("densenet121", "dynamo", None), ("densenet121", "legacy", 17)]


@pytest.fixture(scope="session")
def exported(request):
    """``get(name, build, exporter, opset, **export_kwargs) -> path`` of ``build()``
    exported as ``export`` does.

    The dynamo exporter takes 5–35 s per network on a 2-core machine, so the files are
    kept in pytest's cache folder between runs, under a key made of the torch and onnx
    versions and the source of the networks, of the export helper and of this file: a
    change to any of them exports afresh (``pytest --cache-clear`` forces it).
    """
    sources = b"".join(Path(m.__file__).read_bytes() for m in (torch_zoo, import_helpers))
    sources += Path(__file__).read_bytes()
    key = hashlib.sha256(sources + f"{torch.__version__} {onnx.__version__}".encode())
    folder = request.config.cache.mkdir(f"convas_import_onnx_{key.hexdigest()[:16]}")

    def get(name: str, build, exporter: str, opset: int | None = None, **kwargs) -> Path:
        path = folder / f"{name}_{exporter}_{opset}.onnx"
        if not path.exists():
            partial = folder / f"partial{os.getpid()}_{path.name}"
            export(build(), partial, exporter, opset, **kwargs).replace(path)
        return path

    return get


@pytest.fixture(scope="session")
def zoo_onnx(exported):
    """``get(name, exporter, opset) -> (model, path)`` for the zoo networks."""

    def get(name: str, exporter: str, opset: int | None):
        path = exported(name, lambda: torch_zoo.build(name), exporter, opset)
        return torch_zoo.build(name), path

    return get


def _count(model: torch.nn.Module, cls: type) -> int:
    return sum(isinstance(m, cls) for m in model.modules())


@pytest.mark.parametrize(("name", "exporter", "opset"), CASES)
def test_zoo_network_imports_and_computes_what_onnxruntime_does(zoo_onnx, name, exporter,
                                                               opset):
    model, path = zoo_onnx(name, exporter, opset)
    file_opset = onnx.load(str(path), load_external_data=False).opset_import[0].version
    if opset is not None:
        assert file_opset == opset
    imported = import_onnx(path)
    g = imported.graph
    x = sample()
    assert rel_diff(run_imported(imported, x), run_onnx(path, x)) <= 1e-4
    types = Counter(g.type_of(n) for n in g.nodes)
    # torchvision-style BasicBlocks become ResidualBlocks, the other convs Conv2d blocks
    blocks = _count(model, torch_zoo.BasicBlock)
    assert types["ResidualBlock"] == blocks
    assert types["Conv2d"] == _count(model, torch.nn.Conv2d) - sum(
        _count(m, torch.nn.Conv2d) for m in model.modules() if isinstance(m, torch_zoo.BasicBlock))
    assert types["Input"] == types["Output"] == 1
    assert all(g.pos_of(n) is not None for n in g.nodes)  # laid out
    # ids come from the model's own layer names
    first_conv = next(n for n, m in model.named_modules() if isinstance(m, torch.nn.Conv2d))
    assert first_conv.replace(".", "_") in g
    if blocks:
        assert g.type_of("layer1_0") == "ResidualBlock"
    if exporter == "dynamo":  # the folded BatchNorms are blocks again
        assert types["BatchNorm"] == _count(model, torch.nn.BatchNorm2d) - sum(
            _count(m, torch.nn.BatchNorm2d) for m in model.modules()
            if isinstance(m, torch_zoo.BasicBlock))
    assert imported.summary().startswith(f"imported {path.name}: {len(g)} blocks")


def _bottlenecks() -> torch.nn.Module:
    torch.manual_seed(3)
    return torch_zoo.randomise(torch.nn.Sequential(
        torch.nn.Conv2d(3, 16, 3, padding=1), torch.nn.ReLU(),
        torch_zoo.Bottleneck(16, 32, stride=2), torch_zoo.Bottleneck(32, 32),
        torch_zoo.Bottleneck(32, 32, groups=2),  # grouped: no ResidualBlock computes it
        torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(32, 5)))


@pytest.mark.parametrize("exporter", ["legacy", "dynamo"])
def test_bottlenecks_become_residual_blocks_where_they_match(exported, exporter):
    path = exported("bottlenecks", _bottlenecks, exporter, shape=(3, 16, 16))
    imported = import_onnx(path)
    g = imported.graph
    x = sample((3, 16, 16))
    assert rel_diff(run_imported(imported, x), run_onnx(path, x)) <= 1e-4
    blocks = [n for n in g.nodes if g.type_of(n) == "ResidualBlock"]
    assert sorted(blocks) == ["res2", "res3"]  # Sequential children 2 and 3
    assert g.params_of("res2") == {"out_channels": 32, "stride": 2, "bottleneck": True}
    assert g.params_of("res3") == {"out_channels": 32, "bottleneck": True}
    assert Counter(g.type_of(n) for n in g.nodes)["Add"] == 1  # the grouped one


@pytest.mark.parametrize("exporter", ["legacy", "dynamo"])
def test_functional_calls_resize_pooling_view_softmax(exported, exporter):
    path = exported("functional", torch_zoo.functional, exporter, shape=(3, 8, 8))
    imported = import_onnx(path)
    types = Counter(imported.graph.type_of(n) for n in imported.graph.nodes)
    assert types["Upsample"] == 2 and types["Flatten"] == 2 and types["Concat"] == 1
    x = sample((3, 8, 8))
    assert rel_diff(run_imported(imported, x), run_onnx(path, x)) <= 1e-4


# ---- hand-written graphs ---------------------------------------------------------------


def _init(name: str, array: np.ndarray) -> onnx.TensorProto:
    return numpy_helper.from_array(np.asarray(array, dtype=np.float32), name)


def _model(nodes, inits, shape=(1, 3, 9, 9), out_shape=None, opset=13,
           input_name="x") -> onnx.ModelProto:
    graph = helper.make_graph(
        nodes, "hand", [helper.make_tensor_value_info(input_name, TensorProto.FLOAT, shape)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, out_shape)], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def _kitchen_sink(opset: int = 13) -> onnx.ModelProto:
    """Conv SAME_UPPER, a harmless asymmetric pad, one weight shared by two Convs (once
    through Identity), Clip 0–6 from Constants, Dropout, ReduceMean, Gemm, MatMul + Add,
    Softmax."""
    rng = np.random.default_rng(1)
    w = lambda *s: rng.standard_normal(s).astype(np.float32) * 0.3  # noqa: E731
    shared = w(8, 8, 3, 3)
    axes = {"axes": [2, 3]} if opset < 18 else {}
    nodes = [
        helper.make_node("Conv", ["x", "w0", "b0"], ["c0"], name="stem/conv",
                         auto_pad="SAME_UPPER", kernel_shape=[3, 3]),
        helper.make_node("Relu", ["c0"], ["r0"], name="stem/relu"),
        helper.make_node("Identity", ["shared"], ["shared_alias"], name="alias"),
        helper.make_node("Conv", ["r0", "shared_alias"], ["c1"], name="block/conv_a",
                         pads=[1, 1, 1, 1]),
        helper.make_node("Conv", ["c1", "shared"], ["c2"], name="block/conv_b",
                         pads=[1, 1, 2, 2], strides=[2, 2]),
        helper.make_node("Constant", [], ["lo"], value=numpy_helper.from_array(
            np.array(0, np.float32))),
        helper.make_node("Constant", [], ["hi"], value=numpy_helper.from_array(
            np.array(6, np.float32))),
        helper.make_node("Clip", ["c2", "lo", "hi"], ["r2"], name="block/relu6"),
        helper.make_node("MaxPool", ["r2"], ["p"], name="pool", kernel_shape=[2, 2],
                         strides=[1, 1]),
        helper.make_node("Dropout", ["p"], ["d"], name="drop"),
        helper.make_node("ReduceMean", ["d"] + (["axes"] if opset >= 18 else []), ["m"],
                         name="mean", keepdims=0, **axes),
        helper.make_node("Gemm", ["m", "g_w", "g_b"], ["g"], name="head/gemm", alpha=0.5,
                         beta=2.0),
        helper.make_node("MatMul", ["g", "mm_w"], ["mm"], name="head/matmul"),
        helper.make_node("Add", ["mm", "mm_b"], ["a"], name="head/add"),
        helper.make_node("Softmax", ["a"], ["y"], name="head/softmax", axis=1),
    ]
    inits = [_init("w0", w(8, 3, 3, 3)), _init("b0", w(8)), _init("shared", shared),
             _init("g_w", w(8, 6)), _init("g_b", w(6)), _init("mm_w", w(6, 4)),
             _init("mm_b", w(4))]
    if opset >= 18:
        inits.append(numpy_helper.from_array(np.array([2, 3], np.int64), "axes"))
    return _model(nodes, inits, out_shape=(1, 4), opset=opset)


@pytest.mark.parametrize("opset", [13, 18])
def test_hand_written_graph_imports_exactly(tmp_path, opset):
    path = tmp_path / "sink.onnx"
    onnx.save(_kitchen_sink(opset), str(path))
    imported = import_onnx(path)
    g = imported.graph
    x = sample((3, 9, 9))
    assert rel_diff(run_imported(imported, x), run_onnx(path, x)) <= 1e-4
    types = Counter(g.type_of(n) for n in g.nodes)
    assert types["Conv2d"] == 3 and types["Linear"] == 2 and types["Dropout"] == 0
    assert g.params_of("block_conv_b")["stride"] == 2  # ids from the node names
    assert imported.dropped == Counter({"Dropout": 1})
    assert any("'shared'" in note and "2 layers" in note for note in imported.notes)
    assert g.params_of("head_matmul")["bias"] is True  # the Add became its bias


def test_reshape_to_flatten_with_a_computed_shape(tmp_path):
    """Reshape's shape from Shape → Gather → Unsqueeze → Concat (with a Constant -1), as
    a `x.view(x.size(0), -1)` exports: the shape arithmetic is not imported."""
    rng = np.random.default_rng(2)
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["c"], name="conv", kernel_shape=[3, 3]),
        helper.make_node("Shape", ["c"], ["s"]),
        helper.make_node("Constant", [], ["zero"], value=numpy_helper.from_array(
            np.array(0, np.int64))),
        helper.make_node("Gather", ["s", "zero"], ["n"], axis=0),
        helper.make_node("Constant", [], ["ax"], value=numpy_helper.from_array(
            np.array([0], np.int64))),
        helper.make_node("Unsqueeze", ["n", "ax"], ["n1"]),
        helper.make_node("Constant", [], ["minus"], value=numpy_helper.from_array(
            np.array([-1], np.int64))),
        helper.make_node("Concat", ["n1", "minus"], ["shape"], axis=0),
        helper.make_node("Reshape", ["c", "shape"], ["flat"], name="flatten"),
        helper.make_node("Gemm", ["flat", "fc_w", "fc_b"], ["y"], name="fc", transB=1),
    ]
    inits = [_init("w", rng.standard_normal((4, 3, 3, 3))),
             _init("fc_w", rng.standard_normal((5, 4 * 7 * 7))), _init("fc_b", np.ones(5))]
    path = tmp_path / "reshape.onnx"
    onnx.save(_model(nodes, inits, out_shape=(1, 5), opset=13), str(path))
    imported = import_onnx(path)
    x = sample((3, 9, 9))
    assert rel_diff(run_imported(imported, x), run_onnx(path, x)) <= 1e-4
    assert sorted(imported.graph.type_of(n) for n in imported.graph.nodes) == [
        "Conv2d", "Flatten", "Input", "Linear", "Output"]


def test_asymmetric_padding_that_changes_the_result_is_refused_naming_the_node(tmp_path):
    w = _init("w", np.ones((2, 3, 3, 3)))
    nodes = [helper.make_node("Conv", ["x", "w"], ["y"], name="odd_pad", pads=[0, 0, 1, 1])]
    path = tmp_path / "pad.onnx"
    onnx.save(_model(nodes, [w], out_shape=(1, 2, 8, 8)), str(path))
    with pytest.raises(UnsupportedModel) as info:
        import_onnx(path)
    assert info.value.operators == []
    assert len(info.value.reasons) == 1 and "'odd_pad'" in info.value.reasons[0]
    assert "asymmetric" in str(info.value) and "Pad block" in str(info.value)


def test_same_upper_that_needs_uneven_padding_is_refused(tmp_path):
    w = _init("w", np.ones((2, 3, 3, 3)))
    nodes = [helper.make_node("Conv", ["x", "w"], ["y"], name="tf_conv", strides=[2, 2],
                              auto_pad="SAME_UPPER")]
    path = tmp_path / "same.onnx"
    onnx.save(_model(nodes, [w], shape=(1, 3, 8, 8), out_shape=(1, 2, 4, 4)), str(path))
    with pytest.raises(UnsupportedModel, match="tf_conv"):
        import_onnx(path)


class _Exotic(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.abs(self.conv(x))
        return torch.flatten(torch.exp(torch.abs(x)) * 2.0, 1)


@pytest.mark.parametrize("exporter", ["legacy", "dynamo"])
def test_unsupported_operators_are_listed_with_count_and_a_node(exported, exporter):
    path = exported("exotic", lambda: _Exotic().eval(), exporter,
                    17 if exporter == "legacy" else 18, shape=(3, 8, 8))
    names: dict = {}
    for n in onnx.load(str(path)).graph.node:
        names.setdefault(n.op_type, set()).add(n.name)
    with pytest.raises(UnsupportedModel) as info:
        import_onnx(path)
    listed = {op: (count, node) for op, count, node in info.value.operators}
    assert set(listed) == {"Abs", "Exp"}
    assert listed["Abs"][0] == 2 and listed["Exp"][0] == 1
    for op, (_, node) in listed.items():
        assert node in names[op]
    # a known operator used in a way no block reproduces is reported in the same go
    assert len(info.value.reasons) == 1 and info.value.reasons[0].startswith("Mul node")
    assert "Abs × 2" in str(info.value) and "nothing was written" in str(info.value)


def test_external_data_file(tmp_path):
    model = _kitchen_sink()
    path = tmp_path / "ext.onnx"
    onnx.save(model, str(path), save_as_external_data=True, all_tensors_to_one_file=True,
              location="ext.onnx.data", size_threshold=0)
    assert (tmp_path / "ext.onnx.data").stat().st_size > 0
    assert any(t.data_location == TensorProto.EXTERNAL
               for t in onnx.load(str(path), load_external_data=False).graph.initializer)
    x = sample((3, 9, 9))
    assert rel_diff(run_imported(import_onnx(path), x), run_onnx(path, x)) <= 1e-4
    (tmp_path / "ext.onnx.data").rename(tmp_path / "elsewhere.data")
    with pytest.raises(ImportModelError, match=r"\.data file beside it"):
        import_onnx(path)


def test_unreadable_files_get_a_clear_message(tmp_path):
    good = tmp_path / "good.onnx"
    onnx.save(_kitchen_sink(), str(good))
    truncated = tmp_path / "truncated.onnx"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    text = tmp_path / "notes.onnx"
    text.write_text("this is not a model\n" * 20)
    for path in (truncated, text):
        with pytest.raises(ImportModelError, match="not a readable ONNX model|not an ONNX"):
            import_onnx(path)
    with pytest.raises(ImportModelError, match="no such file"):
        import_onnx(tmp_path / "missing.onnx")


class _FullyConv(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 6, 3, padding=1)
        self.bn = torch.nn.BatchNorm2d(6)
        self.fc = torch.nn.Linear(6, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.bn(self.conv(x)))
        return self.fc(torch.flatten(torch.nn.functional.adaptive_avg_pool2d(x, 1), 1))


@pytest.mark.parametrize("exporter", ["legacy", "dynamo"])
def test_an_open_input_size_asks_for_input_shape(exported, exporter):
    path = exported("open", lambda: torch_zoo.randomise(_FullyConv()), exporter,
                    dynamic_hw=True, shape=(3, 16, 16))
    with pytest.raises(NeedsInputShape, match=r"--input-shape C,H,W"):
        import_onnx(path)
    imported = import_onnx(path, input_shape=(3, 24, 20))
    x = sample((3, 24, 20))
    assert rel_diff(run_imported(imported, x), run_onnx(path, x)) <= 1e-4
    with pytest.raises(ImportModelError, match="fixes its input"):
        import_onnx(path, input_shape=(1, 24, 20))  # the file fixes 3 channels


def _convas_design():
    """Every kind of primitive block the ONNX export writes."""
    return build(
        [("image", "Input", {"channels": 3, "height": 16, "width": 16}),
         ("c1", "Conv2d", {"out_channels": 8, "kernel_size": 3, "stride": 2}),
         ("bn1", "BatchNorm", {}), ("relu1", "Activation", {}),
         ("c2", "Conv2d", {"out_channels": 8, "kernel_size": [1, 3], "padding": [0, 1],
                           "bias": False}),
         ("act2", "Activation", {"function": "leaky_relu", "negative_slope": 0.2}),
         ("sum", "Add", {}),
         ("pool", "MaxPool2d", {"kernel_size": 3, "stride": 2, "padding": 1,
                                "ceil_mode": True}),
         ("up", "Upsample", {"scale_factor": 2}),
         ("dw", "Conv2d", {"out_channels": 8, "groups": 8, "dilation": 2, "padding": 2}),
         ("de", "ConvTranspose2d", {"out_channels": 6}),
         ("avg", "AvgPool2d", {"kernel_size": 4}), ("cat", "Concat", {}),
         ("hs", "Activation", {"function": "hardswish"}),
         ("si", "Activation", {"function": "silu"}), ("gap", "GlobalAvgPool", {}),
         ("adapt", "AdaptiveAvgPool2d", {}), ("flat", "Flatten", {}),
         ("heads", "Concat", {}),
         ("fc", "Linear", {"out_features": 5}), ("th", "Activation", {"function": "tanh"}),
         ("fc2", "Linear", {"out_features": 4, "bias": False}),
         ("sm", "Activation", {"function": "softmax"}), ("out", "Output", {})],
        [("image", "c1"), ("c1", "bn1"), ("bn1", "relu1"), ("relu1", "c2"), ("c2", "act2"),
         ("act2", "sum"), ("relu1", "sum", 1), ("sum", "pool"), ("pool", "up"), ("up", "dw"),
         ("dw", "de"), ("de", "avg"), ("avg", "cat"), ("pool", "cat", 1), ("cat", "hs"),
         ("hs", "si"), ("si", "gap"), ("si", "adapt"), ("adapt", "flat"), ("gap", "heads"),
         ("flat", "heads", 1), ("heads", "fc"), ("fc", "th"), ("th", "fc2"), ("fc2", "sm"),
         ("sm", "out")], name="roundtrip")


def same_design(a, b) -> bool:
    """Same blocks with the same (resolved) params, wired the same way, ids aside."""
    ra, rb = analyze(a), analyze(b)

    def params(g, report, n):
        p = dict(report.nodes[n].resolved)
        if g.type_of(n) == "Conv2d":  # "same" is a way of writing a padding
            p["padding"] = resolve_padding(p["padding"], p["kernel_size"], p["dilation"])
        return sorted(p.items())

    def labelled(g, report):
        d = nx.DiGraph()
        for n in g.nodes:
            d.add_node(n, key=(g.type_of(n), params(g, report, n)))
        for e in g.edges():
            d.add_edge(e.src, e.dst, port=e.port)
        return d

    return nx.is_isomorphic(labelled(a, ra), labelled(b, rb),
                            node_match=lambda x, y: x["key"] == y["key"],
                            edge_match=lambda x, y: x["port"] == y["port"])


def test_round_trip_through_convas_own_onnx_export(tmp_path):
    from engine import compile_graph
    from engine.export import export_onnx

    design = _convas_design()
    torch.manual_seed(0)
    model = torch_zoo.randomise(compile_graph(design))
    path = tmp_path / "roundtrip.onnx"
    assert export_onnx(design, path, state_dict=model.state_dict()).ok
    imported = import_onnx(path)
    assert same_design(design, imported.graph)
    named = {"c1", "bn1", "relu1", "c2", "act2", "pool", "up", "dw", "de", "avg", "adapt",
             "fc", "fc2"}
    assert named <= set(imported.graph.nodes)  # the ids of the blocks with modules
    x = sample((3, 16, 16), batch=3)
    with torch.inference_mode():
        want = model(torch.from_numpy(x)).numpy()
    assert rel_diff(run_imported(imported, x), want) <= 1e-4
