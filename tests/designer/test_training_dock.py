"""Train from the application: curves get points, the selected block's feature maps
show one tile per channel, the confusion matrix appears, and the ONNX export carries
the trained weights."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import PySide6  # noqa: F401  (Qt before pyqtgraph, always)
import torch
from dock_helpers import one_cpu_epoch, train_from_dock

from designer.templates import template_files
from engine import Graph, compile_graph
from engine.checkpoint import load_checkpoint

torch.set_num_threads(1)


def test_train_one_epoch_from_the_gui_then_export_onnx(window, qtbot, tmp_path):
    f = next(f for f in template_files() if f.name == "x_vs_o.convas.json")
    window.doc.new_from(Graph.loads(f.read_text("utf-8"), f.name))
    dock = window.training
    one_cpu_epoch(dock)                     # as a person sets them: edits of the design
    assert (window.doc.graph.training["epochs"], window.doc.graph.training["device"]) == \
        (1, "cpu")
    window.canvas.select(["conv1"])  # feature maps of this block during the run
    train_from_dock(dock, qtbot)
    assert window.canvas.read_only is False  # editable again after the run
    assert dock.plots.point_count() > 0
    rows, cols = dock.maps.tile_grid()
    assert rows * cols >= 8 and dock.maps.mosaic_shape()[0] > 32  # 8 channels of conv1
    assert dock.confusion.overall_accuracy() is not None
    assert len(dock.confusion.per_class_accuracy()) == 2
    out = tmp_path / "xo.onnx"
    assert window.export("onnx", str(out))
    model = compile_graph(window.doc.graph).eval()
    model.load_state_dict(load_checkpoint(dock.checkpoint)["state_dict"])
    x = np.random.default_rng(0).standard_normal((3, 1, 32, 32)).astype(np.float32)
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    (got,) = session.run(None, {session.get_inputs()[0].name: x})
    np.testing.assert_allclose(got, model(torch.from_numpy(x)).detach().numpy(), rtol=1e-4,
                               atol=1e-5)
    assert "trained weights" in window.statusBar().currentMessage()
    assert "onnxruntime agrees" in window.statusBar().currentMessage()

    # after the run, another block's maps come from the checkpoint: conv2 has 16 channels
    window.canvas.select(["conv2"])
    rows, cols = dock.maps.tile_grid()
    assert rows * cols >= 16 > (rows - 1) * cols and "conv2" in dock.maps.title.text()
    assert dock.maps.kernel_grid() != (0, 0)          # a convolution: its kernels too
    # another probe image: the probe shown and conv2's maps for it change together
    before = dock.maps.mosaic_item.image.copy()
    dock.maps.probe_spin.setValue(4)
    expected = dock.info.probe_images[3].astype(np.float32)[0] / 255.0
    np.testing.assert_allclose(dock.maps.probe_item.image, expected, atol=1e-6)
    assert not np.allclose(dock.maps.mosaic_item.image, before, equal_nan=True)

    # the .py export carries the trained weights beside it, the checkpoint export copies
    assert window.export("pytorch", str(tmp_path / "xo.py"))
    weights = torch.load(tmp_path / "xo.pt", weights_only=True)["state_dict"]
    torch.testing.assert_close(weights["conv1.weight"], model.conv1.weight)
    assert window.export("checkpoint", str(tmp_path / "copy.pt"))
    assert (tmp_path / "copy.pt").read_bytes() == dock.checkpoint.read_bytes()

    # an edit that changes the weights' shapes: the export says its weights are untrained
    window.doc.set_param("conv1", "out_channels", 4)
    assert window.export("onnx", str(tmp_path / "edited.onnx"))
    message = window.statusBar().currentMessage()
    assert "untrained weights: the design changed since" in message and "conv1" in message


def test_feature_maps_of_a_blocks_inner_blocks_while_its_body_is_open(window, qtbot):
    """SPEC §9: an instance's own output during the run; after it, with the body open,
    an inner block's maps (the model knows it as ``instance/inner``) from the checkpoint."""
    f = next(f for f in template_files() if f.name == "x_vs_o.convas.json")
    window.doc.new_from(Graph.loads(f.read_text("utf-8"), f.name))
    stage = window.doc.group(["conv1", "bn1", "relu1"], "ConvBNReLU")
    dock = window.training
    one_cpu_epoch(dock)
    window.canvas.select([stage])
    train_from_dock(dock, qtbot)
    assert stage in dock.maps.title.text()
    assert window.editor.open_block(stage)
    window.canvas.select(["conv1"])
    path = f"{stage}/conv1"
    assert path in dock.maps.title.text()
    assert dock.maps.kernel_grid() != (0, 0)  # an inner convolution: its kernels too
    trained = dock.trained()
    index = dock._probe_shown
    expected, kernels = trained.maps(dock.info.probe_images, index, path)
    assert kernels is not None and kernels.shape[0] == expected.shape[0] == 8
    assert (expected < 0).any()  # before the in-place ReLU: a convolution's raw output
    window.canvas.select(["relu1"])
    assert f"{stage}/relu1" in dock.maps.title.text()
