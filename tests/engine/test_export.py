"""ONNX and standalone-PyTorch export (SPEC §4).

Every template is exported both ways. ONNX exports are checked by ``onnx.checker`` and
by onnxruntime against PyTorch at batch 1 and 7 on one file (so the batch axis must
really be dynamic); the ImageNet networks run at a reduced input size, which their
global or adaptive pooling allows, to keep the file fast on a 2-core CPU. A ``.py``
export must load the compiled module's state_dict with ``strict=True`` and then give
the same outputs. A zoo graph with every block type, two inputs and awkward node ids
covers what the templates do not.
"""

from __future__ import annotations

import ast
import errno
import importlib.util
import re
from importlib import resources
from pathlib import Path

import onnx
import onnxruntime as ort
import pytest
import torch

from engine import CATALOGUE, Graph, GraphError, analyze, compile_graph
from engine.blocks.activation import FUNCTIONS
from engine.export import ExportError, OnnxReport, export_onnx, export_pytorch, pytorch_source

TEMPLATE_DIR = resources.files("resources") / "templates"
SUFFIX = ".convas.json"
TEMPLATES = sorted(t.name.removesuffix(SUFFIX) for t in TEMPLATE_DIR.iterdir()
                   if t.name.endswith(SUFFIX))

# Reduced input sizes: every shape stays valid (AlexNet's three 3×3/2 pools need ≥ 63
# pixels, VGG's five 2×2 pools ≥ 32), and the adaptive or global pool before the
# classifier keeps the weights' shapes, so a state_dict from the full size still fits.
# LeNet-5 and X-vs-O flatten a fixed-size map and run at their own size.
SMALL = {"alexnet": (3, 64, 64), "vgg16": (3, 32, 32), "vgg16_stages": (3, 32, 32),
         "resnet18": (3, 64, 64), "resnet18_blocks": (3, 64, 64),
         "resnet50": (3, 64, 64), "googlenet": (3, 64, 64), "densenet121": (3, 64, 64),
         "mobilenetv2": (3, 64, 64)}


def _template(name: str) -> Graph:
    with resources.as_file(TEMPLATE_DIR / (name + SUFFIX)) as path:
        return Graph.load(path)


def zoo_graph() -> Graph:
    """Every block type and activation, non-default options, two Inputs (plus one left
    unconnected), a three-way Add, a vector Concat and ids that are reserved words."""
    g = Graph("Block zoo")

    def node(node_id: str, block: str, params: dict | None = None, *sources: str) -> None:
        g.add_node(node_id, block, params or {})
        for port, src in enumerate(sources):
            g.add_edge(src, node_id, port)

    node("input", "Input", {"channels": 3, "height": 16, "width": 16})
    node("b", "Input", {"channels": 3, "height": 16, "width": 16})
    node("unused", "Input", {"channels": 1, "height": 4, "width": 4})
    node("conv_a", "Conv2d", {"out_channels": 8}, "input")
    node("bn_a", "BatchNorm", {"eps": 1e-3, "momentum": 0.05}, "conv_a")
    node("relu_a", "Activation", {"function": "relu"}, "bn_a")  # compiled in place
    node("conv_b", "Conv2d", {"out_channels": 8, "kernel_size": [3, 5], "padding": [2, 4],
                              "dilation": 2, "bias": False}, "b")
    node("elu_b", "Activation", {"function": "elu"}, "conv_b")
    node("self", "Conv2d", {"out_channels": 8, "kernel_size": 1}, "input")
    node("add3", "Add", {}, "relu_a", "elu_b", "self")
    node("leaky", "Activation", {"function": "leaky_relu", "negative_slope": 0.2}, "add3")
    node("dw", "Conv2d", {"out_channels": 16, "groups": 8, "stride": 2}, "leaky")
    node("relu6", "Activation", {"function": "relu6"}, "dw")
    node("maxpool", "MaxPool2d", {"kernel_size": 3, "stride": 2, "padding": 1,
                                  "ceil_mode": True}, "relu6")
    node("tconv", "ConvTranspose2d", {"out_channels": 8, "kernel_size": 3, "stride": 2,
                                      "padding": 1, "output_padding": 1}, "maxpool")
    node("up_bilinear", "Upsample", {"scale_factor": 2, "mode": "bilinear"}, "tconv")
    node("avgpool", "AvgPool2d", {"kernel_size": 3, "stride": 2, "padding": 1,
                                  "count_include_pad": False}, "up_bilinear")
    node("up_nearest", "Upsample", {"scale_factor": 2}, "avgpool")
    node("res", "ResidualBlock", {"out_channels": 16, "stride": 2}, "up_nearest")
    node("res_same", "ResidualBlock", {"out_channels": 16}, "res")
    node("bottleneck", "ResidualBlock", {"out_channels": 32, "bottleneck": True}, "res_same")
    node("inception", "InceptionBlock", {"ch1x1": 4, "ch3x3red": 4, "ch3x3": 8,
                                         "ch5x5red": 2, "ch5x5": 4, "pool_proj": 4},
         "bottleneck")
    node("dense", "DenseBlock", {"num_layers": 2, "growth_rate": 4, "bn_size": 2},
         "inception")
    node("training", "Activation", {"function": "gelu"}, "dense")  # an nn.Module attribute
    node("silu", "Activation", {"function": "silu"}, "training")
    node("hardswish", "Activation", {"function": "hardswish"}, "silu")
    node("tanh", "Activation", {"function": "tanh"}, "hardswish")
    node("sigmoid", "Activation", {"function": "sigmoid"}, "tanh")
    node("softmax", "Activation", {"function": "softmax"}, "sigmoid")
    node("adaptive", "AdaptiveAvgPool2d", {"output_size": [2, 3]}, "softmax")
    node("flatten", "Flatten", {}, "adaptive")
    node("fc1", "Linear", {"out_features": 12}, "flatten")
    node("drop", "Dropout", {"p": 0.25}, "fc1")
    node("bn1d", "BatchNorm", {"affine": False}, "drop")
    node("gap", "GlobalAvgPool", {}, "dense")
    node("cat_vec", "Concat", {}, "bn1d", "gap")
    node("fc2", "Linear", {"out_features": 5, "bias": False}, "cat_vec")
    node("result", "Output", {}, "fc2")
    return g


def _trained(model: torch.nn.Module) -> torch.nn.Module:
    """Give BatchNorm non-trivial running statistics, as training would."""
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
    return model


# ---- ONNX ------------------------------------------------------------------------------


# Each block kind once through the exporter (about 10 s a template on a CI core):
# VGG-16 is AlexNet's kinds again, and the templates made of user blocks are checked
# against onnxruntime in test_user_blocks.py.
ONNX_TEMPLATES = [t for t in TEMPLATES if t not in ("vgg16", "vgg16_stages", "resnet18_blocks")]


@pytest.mark.parametrize("name", ONNX_TEMPLATES)
def test_template_exports_to_onnx(name: str, tmp_path: Path) -> None:
    torch.manual_seed(0)
    path = tmp_path / f"{name}.onnx"
    report = export_onnx(_template(name), path, input_shape=SMALL.get(name))
    assert report.ok, report.describe()
    assert report.max_rel_diff <= 1e-4
    assert report.batches_checked == (1, 7)
    assert report.opset == 18 and report.input_names == ["input"]
    assert report.path == path and report.size_bytes == path.stat().st_size
    assert report.data_path is None
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temporary left over


def test_onnx_with_weights_matches_pytorch_in_onnxruntime(tmp_path: Path) -> None:
    """Independent of the report: the trained weights are in the file, and onnxruntime
    runs it at a batch size that export_onnx did not try."""
    graph = _template("x_vs_o")
    torch.manual_seed(1)
    trained = _trained(compile_graph(graph)).eval()
    torch.manual_seed(2)  # the export's own module starts from other weights
    path = tmp_path / "x.onnx"
    report = export_onnx(graph, path, state_dict=trained.state_dict())
    assert report.ok and report.output_names == ["out"]
    onnx.checker.check_model(str(path), full_check=True)
    model = onnx.load(str(path))
    assert model.opset_import[0].version == 18
    (graph_input,) = model.graph.input
    assert graph_input.name == "input"
    assert graph_input.type.tensor_type.shape.dim[0].dim_param == "batch"
    x = torch.randn(3, 1, 32, 32)
    (got,) = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(
        None, {"input": x.numpy()})
    with torch.no_grad():
        torch.testing.assert_close(torch.from_numpy(got), trained(x), rtol=1e-4, atol=1e-5)


def test_graph_with_several_inputs_exports(tmp_path: Path) -> None:
    torch.manual_seed(0)
    graph = zoo_graph()
    report = export_onnx(graph, tmp_path / "zoo.onnx", check_batches=(1, 3, 7), seed=5)
    assert report.ok, report.describe()
    assert report.input_names == ["input", "b"]  # the unconnected Input is left out
    assert report.output_names == ["result"]
    assert report.batches_checked == (1, 3, 7)
    session = ort.InferenceSession(str(tmp_path / "zoo.onnx"),
                                   providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["input", "b"]
    assert all(i.shape[0] == "batch" for i in session.get_inputs())


def test_input_shape_override_by_node(tmp_path: Path) -> None:
    torch.manual_seed(0)
    graph = _template("x_vs_o")
    report = export_onnx(graph, tmp_path / "x.onnx", input_shape={"input": (1, 48, 40)},
                         check_batches=(2,))
    assert report.ok and report.batches_checked == (2,)
    dims = onnx.load(str(tmp_path / "x.onnx")).graph.input[0].type.tensor_type.shape.dim
    assert [d.dim_value for d in dims[1:]] == [1, 48, 40]
    assert analyze(graph).nodes["input"].output_shape == (1, 32, 32)  # graph untouched
    with pytest.raises(ValueError, match="nope"):
        export_onnx(graph, tmp_path / "x.onnx", input_shape={"nope": (1, 32, 32)})


def test_describe_is_one_line(tmp_path: Path) -> None:
    report = OnnxReport(path=tmp_path / "x.onnx", opset=18, input_names=["input"],
                        output_names=["out"], max_abs_diff=3.1e-7, max_rel_diff=2e-7,
                        batches_checked=(1, 7), ok=True, size_bytes=int(2.3 * 2**20))
    assert report.describe() == (
        f"ONNX opset 18 written to {tmp_path / 'x.onnx'} (2.30 MiB); onnxruntime agrees "
        f"with PyTorch: max abs diff 3.1e-07 (rel 2e-07) at batch 1 and 7")
    report.ok, report.max_rel_diff, report.batches_checked = False, 0.5, (1, 4, 7)
    assert "DIFFERS" in report.describe() and "at batch 1, 4 and 7" in report.describe()
    assert "\n" not in report.describe()


def test_export_is_quiet(tmp_path: Path, capfd: pytest.CaptureFixture) -> None:
    export_onnx(_template("lenet5"), tmp_path / "l.onnx")
    out, err = capfd.readouterr()
    assert out == "" and err == ""


def test_weights_that_do_not_fit_are_refused(tmp_path: Path) -> None:
    state = compile_graph(_template("lenet5")).state_dict()
    with pytest.raises(ExportError, match="weights do not fit") as info:
        export_onnx(_template("x_vs_o"), tmp_path / "x.onnx", state_dict=state)
    assert "missing conv1.weight, conv1.bias, bn1.weight and 20 more" in str(info.value)
    assert "unexpected c1.weight, c1.bias, c3.weight and 7 more" in str(info.value)
    state = compile_graph(_template("x_vs_o")).state_dict()
    state["fc.weight"] = state["fc.weight"][:, :100]
    with pytest.raises(ExportError, match=r"fc.weight is \[2, 100\] in the weights but "
                                          r"\[2, 512\] in the graph"):
        export_onnx(_template("x_vs_o"), tmp_path / "x.onnx", state_dict=state)
    assert list(tmp_path.iterdir()) == []


def test_large_model_weights_go_to_a_data_file(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """Over 1.5 GiB of weights the exporter writes ``<name>.data`` beside the model;
    pretend LeNet-5 is that large rather than build a huge network."""
    from torch.onnx._internal.exporter import _onnx_program

    if not hasattr(_onnx_program, "_LARGE_MODEL_THRESHOLD"):
        pytest.skip("this torch decides external data differently")
    monkeypatch.setattr(_onnx_program, "_LARGE_MODEL_THRESHOLD", 0)
    report = export_onnx(_template("lenet5"), tmp_path / "l.onnx")
    assert report.ok and report.data_path == tmp_path / "l.onnx.data"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["l.onnx", "l.onnx.data"]
    assert "weights in l.onnx.data" in report.describe()


# ---- writing failures ----------------------------------------------------------------


def test_missing_folder_gives_a_clear_error(tmp_path: Path) -> None:
    target = tmp_path / "missing" / "m.onnx"
    with pytest.raises(ExportError, match="does not exist.*nothing was written"):
        export_onnx(_template("lenet5"), target)
    with pytest.raises(ExportError, match="does not exist"):
        export_pytorch(_template("lenet5"), target.with_suffix(".py"))
    assert list(tmp_path.iterdir()) == []


def test_unwritable_folder_gives_a_clear_error(tmp_path: Path) -> None:
    not_a_folder = tmp_path / "file.txt"
    not_a_folder.write_text("x")
    with pytest.raises(ExportError, match="cannot write .*nothing was written"):
        export_onnx(_template("lenet5"), not_a_folder / "m.onnx")
    read_only = tmp_path / "ro"
    read_only.mkdir(mode=0o500)
    if _can_write(read_only):
        return  # running as root: permissions do not stop writing
    with pytest.raises(ExportError, match="no permission"):
        export_pytorch(_template("lenet5"), read_only / "m.py")
    assert list(read_only.iterdir()) == []


def _can_write(folder: Path) -> bool:
    try:
        (folder / "probe").write_text("")
    except OSError:
        return False
    (folder / "probe").unlink()
    return True


def test_full_disk_leaves_the_old_file_and_no_partial_one(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "m.onnx"
    path.write_bytes(b"old model")

    def save_half(self, destination, **kwargs) -> None:
        Path(destination).write_bytes(b"partial")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(torch.onnx.ONNXProgram, "save", save_half)
    with pytest.raises(ExportError, match="disk is full.*nothing was written"):
        export_onnx(_template("lenet5"), path)
    assert [p.name for p in tmp_path.iterdir()] == ["m.onnx"]
    assert path.read_bytes() == b"old model"

    def full_write(self, *args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(Path, "write_text", full_write)
    with pytest.raises(ExportError, match="disk is full"):
        export_pytorch(_template("lenet5"), tmp_path / "m.py")
    assert [p.name for p in tmp_path.iterdir()] == ["m.onnx"]


def test_invalid_graph_raises_graph_error(tmp_path: Path) -> None:
    graph = _template("lenet5")
    graph.set_param("c1", "kernel_size", 64)  # larger than the 32×32 input
    with pytest.raises(GraphError, match="c1"):
        export_onnx(graph, tmp_path / "m.onnx")
    with pytest.raises(GraphError, match="c1"):
        export_pytorch(graph, tmp_path / "m.py")
    assert list(tmp_path.iterdir()) == []


# ---- standalone PyTorch ------------------------------------------------------------------


def _import(path: Path):
    spec = importlib.util.spec_from_file_location(f"convas_export_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _squeezed_repr(module: torch.nn.Module) -> str:
    """repr with ``(3, 3)`` written ``3``: the export writes square pairs as one int."""
    return re.sub(r"\((\d+), \1\)", r"\1", repr(module))


def _check_py_export(graph: Graph, path: Path, inputs: list[tuple[int, ...]]) -> None:
    compiled = _trained(compile_graph(graph)).eval()
    assert export_pytorch(graph, path) == path
    source = path.read_text(encoding="utf-8")
    imported = {a.name.split(".")[0] for n in ast.walk(ast.parse(source))
                if isinstance(n, ast.Import | ast.ImportFrom)
                for a in ([ast.alias(n.module)] if isinstance(n, ast.ImportFrom) else n.names)}
    assert imported <= {"__future__", "torch"}  # needs only torch
    built = _import(path).build_model()
    assert type(built).__name__ == type(compiled).__name__
    assert list(built.state_dict()) == list(compiled.state_dict())
    assert sum(p.numel() for p in built.parameters()) == sum(
        p.numel() for p in compiled.parameters())
    for name, child in compiled.named_children():  # every argument, e.g. inplace, momentum
        assert _squeezed_repr(getattr(built, name)) == _squeezed_repr(child), name
    built.load_state_dict(compiled.state_dict(), strict=True)
    built.eval()
    xs = [torch.randn(2, *s) for s in inputs]
    with torch.no_grad():
        torch.testing.assert_close(built(*xs), compiled(*xs))


@pytest.mark.parametrize("name", TEMPLATES)
def test_template_exports_to_pytorch(name: str, tmp_path: Path) -> None:
    torch.manual_seed(0)
    graph = _template(name)
    shape = SMALL.get(name) or analyze(graph).nodes["input"].output_shape
    _check_py_export(graph, tmp_path / f"{name}.py", [shape])


def test_zoo_exports_to_pytorch(tmp_path: Path) -> None:
    torch.manual_seed(0)
    _check_py_export(zoo_graph(), tmp_path / "zoo.py", [(3, 16, 16), (3, 16, 16)])
    source = (tmp_path / "zoo.py").read_text(encoding="utf-8")
    assert "self.self_ = nn.Conv2d(3, 8, kernel_size=1)" in source
    assert "self.relu_a = nn.ReLU(inplace=True)" in source
    assert "sum([" in source and "torch.cat([" in source
    assert "= None" not in source.split("def forward")[-1]


def test_zoo_covers_the_whole_catalogue() -> None:
    """A new block type or activation must be added to the zoo, and so to the export."""
    report = analyze(zoo_graph())
    assert report.errors == []
    assert {i.type for i in report.nodes.values()} == set(CATALOGUE)
    functions = {i.resolved["function"] for i in report.nodes.values() if i.type == "Activation"}
    assert functions == set(FUNCTIONS)


def test_py_export_is_tidy() -> None:
    source = pytorch_source(_template("resnet18"))
    assert source.startswith('# Generated by Convas from the graph "ResNet-18".\n'
                             "# Input: input [N, 3, 224, 224]; output [N, 1000]; "
                             "11,689,512 parameters.\n")
    assert "class ResNet18(nn.Module):" in source
    assert "        self.conv1 = nn.Conv2d(3, 64, kernel_size=7, stride=2, padding=3, " \
           "bias=False)\n" in source
    assert "        self.layer2_0 = BasicResidual(64, 128, 2)\n" in source
    assert "def build_model() -> ResNet18:" in source
    assert max(len(line) for line in source.splitlines()) <= 100
    assert "class Inception" not in source  # only the composite classes it uses
    compile(source, "resnet18.py", "exec")


def test_py_class_name_avoids_the_composite_classes() -> None:
    graph = _template("densenet121")
    graph.name = "Dense"
    source = pytorch_source(graph)
    assert "class DenseModel(nn.Module):" in source and "class Dense(nn.Module):" in source
