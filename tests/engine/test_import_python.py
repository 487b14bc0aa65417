"""Python-function import (SPEC §8): ``file.py:function`` / ``package.module:function``
traced with torch.fx, compared with the torch model itself."""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

import pytest
import torch
import torch_zoo
from import_helpers import rel_diff, run_imported, sample
from test_import_onnx import _convas_design, same_design

from engine import compile_graph
from engine.export import export_pytorch
from engine.importers import (
    ImportModelError,
    NeedsInputShape,
    UnsupportedModel,
    import_model,
    import_python,
)

ZOO_FILE = Path(torch_zoo.__file__)


def _expected(name: str, x) -> torch.Tensor:
    with torch.inference_mode():
        return torch_zoo.build(name)(torch.from_numpy(x)).numpy()


@pytest.mark.parametrize(("name", "composite", "count"), [
    ("resnet18", "ResidualBlock", 8), ("mobilenet_v2", None, 0), ("googlenet", None, 0),
    ("densenet121", "DenseBlock", 4)])
def test_zoo_network_imports_and_computes_what_torch_does(name, composite, count):
    imported = import_python(f"{ZOO_FILE}:{name}", (3, 32, 32))
    x = sample()
    assert rel_diff(run_imported(imported, x), _expected(name, x)) <= 1e-4
    types = Counter(imported.graph.type_of(n) for n in imported.graph.nodes)
    if composite is not None:
        # torchvision-style blocks become composites, named after the submodule
        assert types[composite] == count
        first = "layer1_0" if composite == "ResidualBlock" else "features_denseblock1"
        assert imported.graph.type_of(first) == composite
    else:
        model = torch_zoo.build(name)
        assert types["Conv2d"] == sum(isinstance(m, torch.nn.Conv2d) for m in model.modules())
        assert types["BatchNorm"] == sum(isinstance(m, torch.nn.BatchNorm2d)
                                         for m in model.modules())


def test_package_module_reference(monkeypatch):
    monkeypatch.syspath_prepend(str(ZOO_FILE.parent))
    imported = import_model("torch_zoo:resnet18", (3, 32, 32))
    assert Counter(imported.graph.type_of(n) for n in imported.graph.nodes)[
        "ResidualBlock"] == 8


class LookAlike(torch.nn.Module):
    """A BasicBlock's weights, but its own forward (no ReLU after the add): it must not
    be taken for a ResidualBlock."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = torch.nn.Conv2d(8, 8, 3, 1, 1, bias=False)
        self.bn1 = torch.nn.BatchNorm2d(8)
        self.relu = torch.nn.ReLU()
        self.conv2 = torch.nn.Conv2d(8, 8, 3, 1, 1, bias=False)
        self.bn2 = torch.nn.BatchNorm2d(8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn2(self.conv2(self.relu(self.bn1(self.conv1(x))))) + x


def lookalike() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch_zoo.randomise(torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), LookAlike()))


def test_a_lookalike_block_is_traced_as_primitives():
    imported = import_python(f"{Path(__file__)}:lookalike", (3, 10, 10))
    types = Counter(imported.graph.type_of(n) for n in imported.graph.nodes)
    assert types["ResidualBlock"] == 0 and types["Add"] == 1 and types["Conv2d"] == 3
    x = sample((3, 10, 10))
    with torch.inference_mode():
        want = lookalike()(torch.from_numpy(x)).numpy()
    assert rel_diff(run_imported(imported, x), want) <= 1e-4


class Exotic(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 4, 3)
        self.norm = torch.nn.LayerNorm([4, 6, 6])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.norm(self.conv(x)) * 2
        return torch.flatten(x.permute(0, 2, 3, 1) * 3, 1) + 1.0


def exotic() -> torch.nn.Module:
    return Exotic()


def test_unsupported_calls_are_listed_with_count_and_a_node():
    with pytest.raises(UnsupportedModel) as info:
        import_python(f"{Path(__file__)}:exotic", (3, 8, 8))
    listed = {op: (count, node) for op, count, node in info.value.operators}
    assert listed == {"operator.mul": (2, "mul"), "nn.LayerNorm": (1, "norm"),
                      "Tensor.permute": (1, "permute")}
    # a known function used in a way no block reproduces, reported in the same go
    assert len(info.value.reasons) == 1
    assert info.value.reasons[0].startswith("operator.add 'add': adding a constant")


def not_a_module() -> int:
    return 3


def broken() -> torch.nn.Module:
    raise RuntimeError("no weights here")


@pytest.mark.parametrize(("ref", "message"), [
    ("missing_file.py:build", "no such file"),
    ("{here}:nothing", "has no function 'nothing'"),
    ("{here}:not_a_module", "returned int, not an nn.Module"),
    ("{here}:broken", "RuntimeError: no weights here"),
    ("no_such_package_xyz.models:build", "ModuleNotFoundError"),
])
def test_bad_references_get_a_clear_message(ref, message):
    with pytest.raises(ImportModelError, match=message):
        import_python(ref.format(here=Path(__file__)), (3, 8, 8))


def test_a_python_model_needs_an_input_shape():
    with pytest.raises(NeedsInputShape, match=r"--input-shape C,H,W"):
        import_python(f"{ZOO_FILE}:resnet18")


def test_round_trip_through_convas_own_py_export(tmp_path):
    design = _convas_design()
    path = tmp_path / "roundtrip.py"
    export_pytorch(design, path)
    imported = import_python(f"{path}:build_model", (3, 16, 16))
    assert same_design(design, imported.graph)
    # the same ids, but for blocks without a module of their own (Add, Concat, the
    # pooling mean), which the traced code does not name
    assert set(design.nodes) - {"out", "sum", "cat", "gap", "flat", "heads"} <= set(
        imported.graph.nodes)
    torch.manual_seed(0)
    model = torch_zoo.randomise(compile_graph(design))
    imported.state_dict.update(model.state_dict())  # the same keys, so any weights fit
    x = sample((3, 16, 16), batch=3)
    with torch.inference_mode():
        want = model(torch.from_numpy(x)).numpy()
    assert rel_diff(run_imported(imported, x), want) <= 1e-4


def test_composites_round_trip_through_the_py_export(tmp_path):
    """Convas' own ResidualBlock, InceptionBlock and DenseBlock come back as themselves."""
    from graph_builders import build

    design = build(
        [("image", "Input", {"channels": 3, "height": 12, "width": 12}),
         ("stem", "Conv2d", {"out_channels": 16}),
         ("res", "ResidualBlock", {"out_channels": 32, "stride": 2}),
         ("neck", "ResidualBlock", {"out_channels": 32, "bottleneck": True}),
         ("inc", "InceptionBlock", {"ch1x1": 4, "ch3x3red": 4, "ch3x3": 8, "ch5x5red": 2,
                                    "ch5x5": 4, "pool_proj": 4}),
         ("dense", "DenseBlock", {"num_layers": 2, "growth_rate": 4, "bn_size": 2}),
         ("gap", "GlobalAvgPool", {}), ("fc", "Linear", {"out_features": 3}),
         ("out", "Output", {})],
        [("image", "stem"), ("stem", "res"), ("res", "neck"), ("neck", "inc"),
         ("inc", "dense"), ("dense", "gap"), ("gap", "fc"), ("fc", "out")])
    path = tmp_path / "composites.py"
    export_pytorch(design, path)
    imported = import_python(f"{path}:build_model", (3, 12, 12))
    assert same_design(design, imported.graph)
    assert sys.modules  # the file was imported under a private name, not "composites"
    assert "composites" not in sys.modules or sys.modules["composites"].__file__ != str(path)


def test_functional_calls_map_onto_blocks():
    imported = import_python(f"{ZOO_FILE}:functional", (3, 8, 8))
    types = Counter(imported.graph.type_of(n) for n in imported.graph.nodes)
    assert types["Upsample"] == 2 and types["Flatten"] == 2 and types["Concat"] == 1
    assert {imported.graph.params_of(n)["mode"] for n in imported.graph.nodes
            if imported.graph.type_of(n) == "Upsample"} == {"nearest", "bilinear"}
    x = sample((3, 8, 8))
    with torch.inference_mode():
        want = torch_zoo.functional()(torch.from_numpy(x)).numpy()
    assert rel_diff(run_imported(imported, x), want) <= 1e-4
