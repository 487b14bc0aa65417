"""``export_design``: the one export path of the command line and the application.

A ``.py`` export writes its weights beside it as a ``.pt`` checkpoint that loads into the
file's own ``build_model()``; weights that do not fit are refused or (for the
application's last run) replaced by fresh ones with the reason; a checkpoint export
copies a run's file or writes a new one; a failure at any step leaves nothing behind.
"""

from __future__ import annotations

import errno
from pathlib import Path

import onnxruntime as ort
import pytest
import torch
from model_helpers import trained_like

from engine import Graph, GraphError, compile_graph
from engine.checkpoint import load_checkpoint, save_checkpoint
from engine.export import ExportError, ExportResult, export_design, format_for

XO = "resources/templates/x_vs_o.convas.json"
LENET = "resources/templates/lenet5.convas.json"
UNET = "resources/templates/unet_shapes.convas.json"


@pytest.fixture
def graph() -> Graph:
    return Graph.load(XO)


def _checkpoint(graph: Graph, path: Path, seed: int = 0) -> Path:
    """A checkpoint as a run writes one: seeded weights, BatchNorm statistics that are
    not the defaults, what is needed to use the model and to resume it."""
    return save_checkpoint(path, graph, trained_like(graph, seed).state_dict(), epoch=3,
                           classes=["x", "o"], mean=[0.5], std=[0.25],
                           optimizer={"state": {}, "param_groups": []})


def _build(py: Path) -> torch.nn.Module:
    namespace: dict = {"__name__": "exported"}
    exec(compile(py.read_text("utf-8"), str(py), "exec"), namespace)
    return namespace["build_model"]().eval()


def test_format_follows_the_file_name() -> None:
    assert [format_for(n) for n in ("a.py", "a.PT", "a.onnx", "a", "a.model")] == [
        "pytorch", "checkpoint", "onnx", "onnx", "onnx"]


def test_py_export_writes_its_weights_beside_it(graph: Graph, tmp_path: Path) -> None:
    ckpt = _checkpoint(graph, tmp_path / "run" / "model.pt")
    result = export_design(graph, tmp_path / "xo.py", weights=ckpt)
    pt = tmp_path / "xo.pt"
    assert result.format == "pytorch" and result.trained and result.ok
    assert result.files == ((tmp_path / "xo.py", (tmp_path / "xo.py").stat().st_size),
                            (pt, pt.stat().st_size))
    # the .pt is a checkpoint (what the .py's header and --weights read), without the
    # run's optimizer state, and it loads into the file's own model with strict=True
    saved = load_checkpoint(pt)
    assert "optimizer" not in saved and saved["classes"] == ["x", "o"] and saved["epoch"] == 3
    model = _build(tmp_path / "xo.py")
    model.load_state_dict(saved["state_dict"], strict=True)
    reference = compile_graph(graph).eval()
    reference.load_state_dict(load_checkpoint(ckpt)["state_dict"])
    x = torch.randn(3, 1, 32, 32)
    torch.testing.assert_close(model(x), reference(x))
    message = result.describe()
    assert f"trained weights from {ckpt}" in message and "xo.pt" in message
    assert '["state_dict"]' in message


def test_py_export_without_weights_writes_no_pt_and_says_so(graph: Graph,
                                                            tmp_path: Path) -> None:
    result = export_design(graph, tmp_path / "xo.py", "pytorch")
    assert [p.name for p in tmp_path.iterdir()] == ["xo.py"] and not result.trained
    assert "untrained weights: no trained weights were given" in result.describe()
    (tmp_path / "xo.pt").write_bytes(b"an older export")
    result = export_design(graph, tmp_path / "xo.py", "pytorch")
    assert "xo.pt beside it is older" in result.describe()
    assert (tmp_path / "xo.pt").read_bytes() == b"an older export"


def test_a_state_dict_works_as_weights(graph: Graph, tmp_path: Path) -> None:
    state = compile_graph(graph).state_dict()
    result = export_design(graph, tmp_path / "w.pt", weights=state)
    assert result.format == "checkpoint" and result.weights_from == "the given state_dict"
    saved = load_checkpoint(tmp_path / "w.pt")
    assert saved["graph"] == graph.to_dict()
    for key, tensor in state.items():
        assert torch.equal(saved["state_dict"][key], tensor), key


def test_checkpoint_export_copies_the_run_or_needs_weights(graph: Graph,
                                                           tmp_path: Path) -> None:
    ckpt = _checkpoint(graph, tmp_path / "model.pt")
    result = export_design(graph, tmp_path / "copy.pt", "checkpoint", ckpt)
    assert (tmp_path / "copy.pt").read_bytes() == ckpt.read_bytes()  # resumable as it was
    assert result.files == ((tmp_path / "copy.pt", ckpt.stat().st_size),)
    with pytest.raises(ExportError, match="needs trained weights.*nothing was written"):
        export_design(graph, tmp_path / "none.pt", "checkpoint")
    assert not (tmp_path / "none.pt").exists()


def test_weights_of_another_design_are_refused_or_replaced(graph: Graph,
                                                           tmp_path: Path) -> None:
    ckpt = _checkpoint(graph, tmp_path / "model.pt")
    edited = graph.copy()
    edited.set_param("conv1", "out_channels", 4)
    for fmt, name in (("pytorch", "a.py"), ("checkpoint", "a2.pt"), ("onnx", "a.onnx")):
        with pytest.raises(ExportError, match=r"do not fit this design.*conv1\.weight is "
                                              r"\[8, 1, 3, 3\] in the weights but \[4, 1, 3, 3\]"):
            export_design(edited, tmp_path / name, fmt, ckpt)
    # the application's last run, outdated by an edit: fresh weights, and why
    result = export_design(edited, tmp_path / "b.py", "pytorch", ckpt, if_unfit="untrained")
    assert not result.trained and len(result.files) == 1
    assert f"untrained weights: the design changed since {ckpt} was trained" in result.describe()
    with pytest.raises(ExportError, match="do not fit"):  # no checkpoint without its weights
        export_design(edited, tmp_path / "b.pt", "checkpoint", ckpt, if_unfit="untrained")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b.py", "model.pt"]


def test_unreadable_weights_and_unknown_formats_are_clear(graph: Graph, tmp_path: Path) -> None:
    foreign = tmp_path / "foreign.pt"
    torch.save({"weights": 1}, foreign)
    with pytest.raises(ExportError, match="not a Convas checkpoint"):
        export_design(graph, tmp_path / "x.py", weights=foreign)
    with pytest.raises(ExportError, match="no such checkpoint"):
        export_design(graph, tmp_path / "x.py", weights=tmp_path / "missing.pt")
    with pytest.raises(ExportError, match="unknown export format 'tflite'"):
        export_design(graph, tmp_path / "x.tflite", "tflite")
    state = compile_graph(graph).state_dict()
    with pytest.raises(ExportError, match="name ending in .py"):
        export_design(graph, tmp_path / "x.pt", "pytorch", state)
    assert [p.name for p in tmp_path.iterdir()] == ["foreign.pt"]


def test_invalid_design_raises_graph_error_and_writes_nothing(tmp_path: Path) -> None:
    graph = Graph.load(LENET)
    state = compile_graph(graph).state_dict()
    graph.set_param("c1", "kernel_size", 64)  # larger than the 32×32 input
    for fmt in ("pytorch", "checkpoint", "onnx"):
        with pytest.raises(GraphError, match="c1"):
            export_design(graph, tmp_path / "m", fmt, state)
    assert list(tmp_path.iterdir()) == []


def test_a_full_disk_leaves_neither_file_and_the_old_ones_intact(
        graph: Graph, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "xo.py").write_text("# an older export\n")
    state = compile_graph(graph).state_dict()

    def save_half(obj, f, *args, **kwargs) -> None:
        Path(f).write_bytes(b"partial")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(torch, "save", save_half)
    with pytest.raises(ExportError, match="disk is full.*nothing was written"):
        export_design(graph, tmp_path / "xo.py", "pytorch", state)
    assert [p.name for p in tmp_path.iterdir()] == ["xo.py"]  # no .pt, no staging folder
    assert (tmp_path / "xo.py").read_text() == "# an older export\n"

    def writer_fails(obj, f, *args, **kwargs) -> None:
        raise RuntimeError("[enforce fail at inline_container.cc:595] . unexpected pos 64")

    monkeypatch.setattr(torch, "save", writer_fails)
    with pytest.raises(ExportError, match="cannot write xo.pt: .*unexpected pos"):
        export_design(graph, tmp_path / "xo.py", "pytorch", state)
    assert [p.name for p in tmp_path.iterdir()] == ["xo.py"]


def test_onnx_export_reports_files_weights_and_onnxruntime(graph: Graph,
                                                           tmp_path: Path) -> None:
    ckpt = _checkpoint(graph, tmp_path / "model.pt")
    result = export_design(graph, tmp_path / "xo.onnx", weights=ckpt)
    assert isinstance(result, ExportResult) and result.format == "onnx" and result.ok
    assert result.files == ((tmp_path / "xo.onnx", (tmp_path / "xo.onnx").stat().st_size),)
    assert result.onnx is not None and result.onnx.max_rel_diff <= 1e-4
    assert result.describe().startswith(result.onnx.describe() + "; trained weights from ")
    # the file carries the checkpoint's weights, not fresh ones
    model = compile_graph(graph).eval()
    model.load_state_dict(load_checkpoint(ckpt)["state_dict"])
    x = torch.randn(2, 1, 32, 32)
    session = ort.InferenceSession(str(tmp_path / "xo.onnx"), providers=["CPUExecutionProvider"])
    (got,) = session.run(None, {session.get_inputs()[0].name: x.numpy()})
    torch.testing.assert_close(torch.from_numpy(got), model(x).detach(), rtol=1e-4, atol=1e-5)


# ---- --dynamic-size (SPEC §7, fully convolutional designs) ------------------------------


def test_dynamic_size_export_of_the_unet_agrees_at_two_sizes(tmp_path: Path) -> None:
    import onnx

    graph = Graph.load(UNET)
    model = trained_like(graph, 3).eval()
    result = export_design(graph, tmp_path / "unet.onnx", weights=model.state_dict(),
                           dynamic_size=True)
    assert result.ok and result.trained
    assert result.onnx.sizes_checked == ((64, 64), (96, 80))
    assert "at 64×64 and 96×80 (H and W dynamic)" in result.describe()
    dims = onnx.load(str(tmp_path / "unet.onnx")).graph.input[0].type.tensor_type.shape.dim
    assert [d.dim_param or d.dim_value for d in dims] == ["batch", 1, "height", "width"]
    # checked here again, independently of the export's own comparison
    session = ort.InferenceSession(str(tmp_path / "unet.onnx"),
                                   providers=["CPUExecutionProvider"])
    for shape in ((2, 1, 64, 64), (1, 1, 96, 80)):
        x = torch.randn(*shape)
        (got,) = session.run(None, {"input": x.numpy()})
        with torch.no_grad():
            expected = model(x)
        assert got.shape == (shape[0], 6, *shape[2:])
        torch.testing.assert_close(torch.from_numpy(got), expected, rtol=1e-4, atol=1e-4)


def test_dynamic_size_refuses_a_design_with_flatten_by_name(tmp_path: Path) -> None:
    with pytest.raises(ExportError) as exc:
        export_design(Graph.load(LENET), tmp_path / "l.onnx", dynamic_size=True)
    message = str(exc.value)
    assert "fully convolutional" in message and "flatten (Flatten)" in message
    assert "nothing was written" in message
    assert list(tmp_path.iterdir()) == []


def test_dynamic_size_is_for_onnx_only(tmp_path: Path) -> None:
    with pytest.raises(ExportError, match="--dynamic-size is for ONNX"):
        export_design(Graph.load(UNET), tmp_path / "u.py", dynamic_size=True)
    assert list(tmp_path.iterdir()) == []


def test_dynamic_size_with_two_inputs_of_one_size_shares_height_and_width(
        tmp_path: Path) -> None:
    g = Graph("two")
    for n in ("left", "right"):
        g.add_node(n, "Input", {"channels": 1, "height": 16, "width": 16})
    g.add_node("add", "Add")
    g.add_edge("left", "add", 0)
    g.add_edge("right", "add", 1)
    g.add_node("conv", "Conv2d", {"out_channels": 2})
    g.add_edge("add", "conv")
    g.add_node("out", "Output")
    g.add_edge("conv", "out")
    result = export_design(g, tmp_path / "two.onnx", dynamic_size=True)
    assert result.ok and result.onnx.sizes_checked == ((16, 16), (20, 18))  # stride 1
    session = ort.InferenceSession(str(tmp_path / "two.onnx"),
                                   providers=["CPUExecutionProvider"])
    assert [i.shape for i in session.get_inputs()] == [["batch", 1, "height", "width"]] * 2
