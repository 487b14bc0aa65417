"""Blocks made of blocks (SPEC §9): the file's definitions, analysis through the body,
errors named by block and instance, compilation to a submodule per instance."""

from __future__ import annotations

import copy
import json
from importlib import resources

import pytest
from user_block_designs import CONV_RELU, chain, nested_design

from engine import Graph, GraphError, GraphFileError, analyze, compile_graph
from engine.user_blocks import BodyError

TEMPLATES = resources.files("resources") / "templates"


def _template(name: str) -> Graph:
    with resources.as_file(TEMPLATES / f"{name}.convas.json") as path:
        return Graph.load(path)


def _only_error(graph: Graph, node: str) -> str:
    report = analyze(graph)
    assert [e.node for e in report.errors] == [node]
    return report.errors[0].message


def test_vgg16_with_stages_matches_torchvision_and_the_primitive_template() -> None:
    stages, plain = analyze(_template("vgg16_stages")), analyze(_template("vgg16"))
    assert stages.errors == [] and stages.warnings == []
    assert stages.total_params == plain.total_params == 138_357_544
    assert stages.total_macs == plain.total_macs
    assert stages.total_activations == plain.total_activations
    assert stages.memory(8).total == plain.memory(8).total
    assert stages.output_shape == (1000,)
    # the receptive field runs through the bodies as through the plain layers
    assert stages.nodes["stage5"].receptive_field == plain.nodes["pool5"].receptive_field
    assert stages.nodes["stage5"].jump == plain.nodes["pool5"].jump == 32


def test_resnet18_with_blocks_matches_the_primitive_template() -> None:
    blocks, plain = analyze(_template("resnet18_blocks")), analyze(_template("resnet18"))
    assert blocks.errors == [] and blocks.warnings == []
    assert blocks.total_params == plain.total_params == 11_689_512
    assert blocks.total_macs == plain.total_macs
    assert blocks.nodes["layer4"].receptive_field == plain.nodes["layer4_1"].receptive_field
    assert blocks.nodes["layer4"].output_shape == plain.nodes["layer4_1"].output_shape
    # nested two deep: a Layer holds BasicDown and Basic, which hold the convolutions
    assert blocks.nodes["layer2"].inner["block0"].inner["proj"].params == 64 * 128


def test_instance_resolves_like_a_catalogue_block() -> None:
    g = Graph.from_dict(nested_design())
    spec = g.spec("Merge")
    assert (spec.min_inputs, spec.max_inputs) == (2, 2)
    assert [p.name for p in spec.params] == ["width", "act", "bias", "p"]
    assert spec.param_index["act"].choices == ("relu", "tanh")
    assert spec.param_index["width"].minimum == 1 and spec.defaults()["p"] == 0.0
    assert spec.doc.startswith("ConvReLU of the first input")
    assert g.spec("ConvReLU").prefix() == "convrelu"
    report = analyze(g)
    assert report.errors == []
    # s1: conv 3→6 3×3; m1: conv 6→6 3×3 + conv 3→6 1×1 without bias; s2: conv 6→4 1×3
    expected = {"s1": 3 * 6 * 9 + 6, "m1": 6 * 6 * 9 + 6 + 3 * 6, "s2": 6 * 4 * 3 + 4}
    for n, params in expected.items():
        assert report.nodes[n].params == params
        assert report.nodes[n].macs == (params - (6 if n == "m1" else
                                                  report.nodes[n].output_shape[0])) * 144
    assert report.nodes["m1"].inner["main"].inner["conv"].params == 6 * 6 * 9 + 6
    assert report.nodes["s2"].output_shape == (4, 12, 12)
    assert report.nodes["s2"].receptive_field == 7  # 3, then 3 (max of 3 and 1), then 1×3


def test_undeclared_argument_names_the_block_on_every_instance() -> None:
    d = nested_design()
    d["blocks"]["ConvReLU"]["nodes"][1]["params"]["stride"] = "$stride"
    message = _only_error(Graph.from_dict(d), "s1")
    assert "ConvReLU" in message and "$stride" in message and "declare" in message
    errors = analyze(Graph.from_dict(d)).errors
    # m1 contains a ConvReLU: it is wrong too, and says why; s2 waits for m1
    assert [e.node for e in errors] == ["s1"]  # m1 and s2 wait for s1's shape
    d["edges"][1] = {"from": "input", "to": "m1"}
    d["blocks"]["Merge"]["params"]["width"]["default"] = 3
    errors = analyze(Graph.from_dict(d)).errors
    assert {e.node for e in errors} >= {"m1"}
    assert "Merge uses ConvReLU" in next(e.message for e in errors if e.node == "m1")


@pytest.mark.parametrize("indirect", [False, True])
def test_a_block_that_uses_itself_is_an_error_naming_the_cycle(indirect: bool) -> None:
    d = nested_design()
    if indirect:  # ConvReLU → Inner → ConvReLU
        d["blocks"]["Inner"] = copy.deepcopy(CONV_RELU)
        d["blocks"]["Inner"]["nodes"][1] = {"id": "conv", "type": "ConvReLU",
                                            "params": {"width": "$width"}}
        d["blocks"]["ConvReLU"]["nodes"][1] = {"id": "conv", "type": "Inner",
                                               "params": {"width": "$width"}}
    else:
        d["blocks"]["ConvReLU"]["nodes"][1] = {"id": "conv", "type": "ConvReLU",
                                               "params": {"width": "$width"}}
    g = Graph.from_dict(d)  # it loads, so the editor can open it and the user fix it
    message = _only_error(g, "s1")
    cycle = "ConvReLU → Inner → ConvReLU" if indirect else "ConvReLU → ConvReLU"
    assert cycle in message and "uses itself" in message
    with pytest.raises(GraphError, match="uses itself"):
        compile_graph(g)


def test_unknown_argument_and_wrong_argument_type_name_block_and_instance() -> None:
    d = nested_design()
    d["nodes"][1]["params"]["depth"] = 2
    report = analyze(Graph.from_dict(d))
    (error,) = report.errors
    assert error.node == "s1"
    assert "ConvReLU has no parameter 'depth'" in error.message
    assert "width, k" in error.message  # what it does take
    assert "node 's1'" in str(error)

    for bad, words in (("wide", "not an integer"), (0, "below the minimum 1")):
        d = nested_design()
        d["nodes"][1]["params"]["width"] = bad
        (error,) = analyze(Graph.from_dict(d)).errors
        assert (error.node, error.param) == ("s1", "width")
        assert error.message.startswith("ConvReLU: parameter 'width'") and words in error.message
    d = nested_design()
    d["nodes"][2]["params"]["act"] = "gelu"
    (error,) = analyze(Graph.from_dict(d)).errors
    assert error.node == "m1" and "relu, tanh" in error.message


def test_error_inside_a_body_is_reported_as_instance_slash_inner_id() -> None:
    d = nested_design(size=2)  # s2's 1×3 kernel still fits; a 5×5 one in s1 does not
    d["nodes"][1]["params"]["k"] = 4  # "same" padding needs an odd kernel
    report = analyze(Graph.from_dict(d))
    (error,) = report.errors
    assert isinstance(error, BodyError)
    assert error.node == "s1" and error.path == ("s1", "conv")
    assert error.message.startswith("s1/conv: ") and "odd kernel" in error.message
    assert report.nodes["m1"].output_shape is None  # downstream waits, no second error
    d["nodes"][1]["params"]["k"] = 0  # fine for the declaration, not for Conv2d
    (error,) = analyze(Graph.from_dict(d)).errors
    assert error.message.startswith("s1/conv: parameter 'kernel_size'")
    assert error.param == "k"  # the argument that feeds the faulty parameter

    d = nested_design()  # nested two deep: Merge → ConvReLU → Conv2d
    d["blocks"]["Merge"]["nodes"][2]["params"]["k"] = 2
    (error,) = analyze(Graph.from_dict(d)).errors
    assert error.node == "m1" and error.path == ("m1", "main", "conv")
    assert error.message.startswith("m1/main/conv: ") and error.param is None


def _tidy(d: dict) -> dict:
    """The document with its edges sorted (their order carries no meaning)."""
    d = copy.deepcopy(d)
    for part in [d, *d.get("blocks", {}).values()]:
        part["edges"].sort(key=lambda e: (e["from"], e["to"], e.get("port", 0)))
    return d


def test_a_body_block_not_leading_to_the_output_is_a_warning_on_each_instance() -> None:
    d = nested_design()
    d["blocks"]["ConvReLU"]["nodes"].insert(3, {"id": "spare", "type": "Dropout",
                                                "params": {}})
    d["blocks"]["ConvReLU"]["edges"].append({"from": "conv", "to": "spare"})
    report = analyze(Graph.from_dict(d))
    assert report.errors == []
    assert [(w.node, w.message.split(":")[0]) for w in report.warnings] == [
        ("s1", "s1/spare"), ("m1", "m1/main/spare"), ("s2", "s2/spare")]
    assert "not connected to the Output of ConvReLU" in report.warnings[0].message
    assert report.total_params == analyze(Graph.from_dict(nested_design())).total_params


def test_save_and_load_keep_the_blocks_identically(tmp_path) -> None:
    d = nested_design()
    d["blocks"]["ConvReLU"]["future"] = {"kept": True}  # unknown keys survive, as elsewhere
    d["blocks"]["ConvReLU"]["nodes"][1]["pos"] = [10, 20]
    d["extra_top"] = [1, 2]
    g = Graph.from_dict(d)
    assert _tidy(g.to_dict()) == _tidy(d)
    path = tmp_path / "nested.convas.json"
    g.save(path)
    again = Graph.load(path)
    assert _tidy(again.to_dict()) == _tidy(d)
    assert again.dumps() == path.read_text(encoding="utf-8")
    assert set(again.blocks) == {"ConvReLU", "Merge"}
    assert again.blocks["Merge"].body.blocks is again.blocks  # a body sees the file's blocks
    copied = again.copy()
    assert _tidy(copied.to_dict()) == _tidy(d)
    assert copied.blocks["ConvReLU"] is not again.blocks["ConvReLU"]


@pytest.mark.parametrize(("change", "words"), [
    (lambda d: d["blocks"].update(Conv2d=d["blocks"]["ConvReLU"]), "name of a built-in"),
    (lambda d: d["blocks"]["ConvReLU"]["params"]["width"].update(type="tensor"),
     "type 'tensor' is not one of int, float, bool, str, int2"),
    (lambda d: d["blocks"]["ConvReLU"]["params"]["width"].pop("default"), "give it a default"),
    (lambda d: d["blocks"]["ConvReLU"]["params"]["width"].update(default="x"),
     "default 'x'"),
    (lambda d: d["blocks"]["Merge"]["params"]["act"].pop("choices"), "needs \"choices\""),
    (lambda d: d["blocks"]["ConvReLU"]["nodes"].append({"id": "z", "type": "Nope"}),
     "block 'ConvReLU', node 'z': unknown block type 'Nope'"),
    (lambda d: d.update(blocks=[]), '"blocks" must be an object'),
])
def test_unreadable_definitions_are_refused_with_the_block_named(change, words) -> None:
    d = nested_design()
    change(d)
    with pytest.raises(GraphFileError) as info:
        Graph.from_dict(d)
    assert words in str(info.value)


def test_a_refused_definition_is_reported_once_not_on_every_node_using_it() -> None:
    d = nested_design()
    d["blocks"]["ConvReLU"]["params"]["width"]["type"] = "tensor"
    d["nodes"][1]["type"] = [1]  # and a node of no readable type at all
    with pytest.raises(GraphFileError) as info:
        Graph.from_dict(d)
    messages = [e.message for e in info.value.errors]
    assert len(messages) == 2, messages  # not again for m1's body, s2, or their wires
    assert "type 'tensor'" in messages[0] and "unknown block type [1]" in messages[1]


def test_editing_a_body_reanalyses_every_instance() -> None:
    g = Graph.from_dict(nested_design())
    before = analyze(g)
    assert analyze(g).nodes["s2"] is before.nodes["s2"]  # memoised while nothing changed
    g.blocks["ConvReLU"].body.set_param("conv", "bias", False)
    after = analyze(g)
    assert after.nodes["s1"].params == before.nodes["s1"].params - 6
    assert after.nodes["s2"].params == before.nodes["s2"].params - 4
    assert after.nodes["m1"].params == before.nodes["m1"].params - 6
    assert after.total_params == before.total_params - 16


def test_compiled_instances_are_submodules_named_after_their_ids() -> None:
    import torch
    import torch.nn.functional as F

    g = Graph.from_dict(nested_design())
    model = compile_graph(g).eval()
    assert list(model.state_dict()) == [
        "s1.conv.weight", "s1.conv.bias", "m1.main.conv.weight", "m1.main.conv.bias",
        "m1.proj.weight", "s2.conv.weight", "s2.conv.bias", "fc.weight", "fc.bias"]
    assert "s1 = self.s1(input_1)" in model.code and "m1 = self.m1(s1, input_1)" in model.code
    assert "add = main + proj" in model.m1.code.replace("operator.add(main, proj)",
                                                        "main + proj")
    assert type(model.m1).__name__ == "Merge"
    assert model.meta["convas_modules"]["m1"] == "m1"
    sd = model.state_dict()
    x = torch.randn(2, 3, 12, 12)
    s1 = F.relu(F.conv2d(x, sd["s1.conv.weight"], sd["s1.conv.bias"], padding=1))
    main = F.relu(F.conv2d(s1, sd["m1.main.conv.weight"], sd["m1.main.conv.bias"], padding=1))
    m1 = torch.tanh(main + F.conv2d(x, sd["m1.proj.weight"]))
    s2 = F.relu(F.conv2d(m1, sd["s2.conv.weight"], sd["s2.conv.bias"], padding=(0, 1)))
    expected = F.linear(s2.mean((2, 3)), sd["fc.weight"], sd["fc.bias"])
    with torch.no_grad():
        torch.testing.assert_close(model(x), expected)


def test_frozen_instance_freezes_its_whole_body() -> None:
    d = nested_design()
    d["nodes"][2]["frozen"] = True
    model = compile_graph(Graph.from_dict(d))
    frozen = {n for n, p in model.named_parameters() if not p.requires_grad}
    assert frozen == {"m1.main.conv.weight", "m1.main.conv.bias", "m1.proj.weight"}
    assert analyze(Graph.from_dict(d)).trainable_params == \
        analyze(Graph.from_dict(nested_design())).total_params - 6 * 6 * 9 - 6 - 18


def test_summary_expand_lists_body_rows(tmp_path, capsys) -> None:
    from designer.cli import main

    path = tmp_path / "nested.convas.json"
    path.write_text(json.dumps(nested_design()), encoding="utf-8")
    assert main(["summary", str(path), "--expand"]) == 0
    rows = [line.split()[0] for line in capsys.readouterr().out.splitlines()[5:13]]
    assert rows == ["s1", "s1/conv", "s1/relu", "m1", "m1/main", "m1/main/conv",
                    "m1/main/relu", "m1/proj"]
    assert main(["summary", str(path)]) == 0
    assert "s1/conv" not in capsys.readouterr().out
    assert main(["summary", str(path), "--json", "--expand"]) == 0
    data = json.loads(capsys.readouterr().out)
    m1 = next(n for n in data["nodes"] if n["id"] == "m1")
    assert [r["id"] for r in m1["body"]][:3] == ["m1/main", "m1/main/conv", "m1/main/relu"]
    assert sum(r["params"] for r in m1["body"] if r["type"] != "ConvReLU") == m1["params"]
    assert data["total_params"] == sum(n["params"] for n in data["nodes"])


def test_chain_helper_is_what_the_designs_use() -> None:
    assert chain("a", "b", "c") == [{"from": "a", "to": "b"}, {"from": "b", "to": "c"}]


# ---- export ------------------------------------------------------------------------------


def test_onnx_export_of_nested_instances_matches_onnxruntime(tmp_path) -> None:
    import numpy as np
    import onnxruntime as ort
    import torch

    from engine.export import export_onnx

    g = Graph.from_dict(nested_design())
    torch.manual_seed(1)
    model = compile_graph(g).eval()
    path = tmp_path / "nested.onnx"
    report = export_onnx(g, path, state_dict=model.state_dict())
    assert report.ok, report.describe()
    x = np.random.default_rng(3).standard_normal((3, 3, 12, 12)).astype(np.float32)
    (got,) = ort.InferenceSession(str(path)).run(None, {"input": x})
    with torch.no_grad():
        expected = model(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5)


def _import_source(source: str):
    namespace: dict = {}
    exec(compile(source, "exported.py", "exec"), namespace)  # noqa: S102 - our own output
    return namespace


def test_py_export_writes_a_class_per_block_and_loads_the_state_dict_strictly(tmp_path):
    import torch

    from engine.export import export_pytorch

    g = Graph.from_dict(nested_design())
    torch.manual_seed(2)
    model = compile_graph(g).eval()
    path = export_pytorch(g, tmp_path / "nested.py")
    source = path.read_text(encoding="utf-8")
    # one class per block, written with its arguments, instantiated with them
    assert "class ConvReLU(nn.Module):" in source and "class Merge(nn.Module):" in source
    assert "def __init__(self, in_channels: int, width: int = 8, k: tuple[int, int] = (3, 3))" \
        in source
    assert "self.conv = nn.Conv2d(in_channels, width, kernel_size=k, " \
           "padding=(k[0] // 2, k[1] // 2))" in source
    assert "self.main = ConvReLU(a_channels, width=width)" in source
    assert "self.drop = nn.Dropout(p)" in source
    assert "self.s1 = ConvReLU(3, width=6)" in source
    assert "self.s2 = ConvReLU(6, width=4, k=(1, 3))" in source
    assert "self.m1 = Merge(6, 3, width=6, act='tanh', bias=False, p=0.25)" in source
    assert source.count("class ConvReLU") == 1  # both instances share it
    assert max(len(line) for line in source.splitlines()) <= 100
    built = _import_source(source)["build_model"]()
    built.load_state_dict(model.state_dict(), strict=True)
    built.eval()
    x = torch.randn(2, 3, 12, 12)
    with torch.no_grad():
        torch.testing.assert_close(built(x), model(x))
    assert repr(built.m1) == repr(model.m1)


def test_py_export_gives_instances_that_need_other_code_a_class_of_their_own(tmp_path):
    """A value the class cannot write by an argument's name (here a bool) that differs
    between two instances makes a second class: the file stays exact."""
    import torch

    from engine.export import pytorch_source

    d = nested_design()
    d["blocks"]["ConvReLU"]["params"]["bias"] = {"type": "bool", "default": True}
    d["blocks"]["ConvReLU"]["nodes"][1]["params"]["bias"] = "$bias"
    d["nodes"][3]["params"]["bias"] = False
    g = Graph.from_dict(d)
    source = pytorch_source(g)
    assert "class ConvReLU_2(nn.Module):" in source
    assert "self.s2 = ConvReLU_2(6, width=4, k=(1, 3), bias=False)" in source
    model = compile_graph(g).eval()
    built = _import_source(source)["build_model"]().eval()
    built.load_state_dict(model.state_dict(), strict=True)
    x = torch.randn(1, 3, 12, 12)
    with torch.no_grad():
        torch.testing.assert_close(built(x), model(x))


def test_py_export_of_the_vgg16_stages_template_reads_like_hand_written_code() -> None:
    from engine.export import pytorch_source

    source = pytorch_source(_template("vgg16_stages"))
    assert "        self.c2 = ConvReLU(width, width=width)\n" in source
    assert "        self.stage3 = Stage3(128, width=256)\n" in source
    assert source.count("(nn.Module):") == 4  # ConvReLU, Stage2, Stage3 and the network
