"""Shared by the import tests: exporting plain PyTorch models with either of torch's ONNX
exporters, running files with onnxruntime, and running an imported design."""

from __future__ import annotations

import contextlib
import io
import logging
import warnings
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch

from engine import compile_graph
from engine.importers import Imported

TOLERANCE = 1e-4


def export(model: torch.nn.Module, path: Path, exporter: str, opset: int | None = None,
           shape: tuple[int, int, int] = (3, 32, 32), dynamic_hw: bool = False) -> Path:
    """``exporter`` is "dynamo" (torch.export based; ``opset`` None: its default) or
    "legacy" (TorchScript based). Batch 1, fixed size unless ``dynamic_hw``."""
    x = torch.randn(1, *shape)
    quiet = io.StringIO()
    loggers = [logging.getLogger(n) for n in ("torch.onnx", "torch.export", "onnxscript")]
    for logger in loggers:
        logger.setLevel(logging.ERROR)
    with warnings.catch_warnings(), contextlib.redirect_stdout(quiet), \
            contextlib.redirect_stderr(quiet):
        warnings.simplefilter("ignore")
        if exporter == "dynamo":
            kwargs = {} if opset is None else {"opset_version": opset}
            if dynamic_hw:
                h, w = torch.export.Dim("h", min=8), torch.export.Dim("w", min=8)
                kwargs["dynamic_shapes"] = ({2: h, 3: w},)
            torch.onnx.export(model, (x,), str(path), dynamo=True, verbose=False, **kwargs)
        else:
            axes = {"x": {2: "h", 3: "w"}} if dynamic_hw else None
            torch.onnx.export(model, (x,), str(path), dynamo=False, opset_version=opset or 13,
                              input_names=["x"], dynamic_axes=axes)
    return path


def run_onnx(path: Path, x: np.ndarray) -> np.ndarray:
    """onnxruntime's output, one sample at a time (the files fix the batch at 1)."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.log_severity_level = 3
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    return np.concatenate([session.run(None, {name: x[i:i + 1]})[0] for i in range(len(x))])


def run_imported(imported: Imported, x: np.ndarray) -> np.ndarray:
    """The imported design, compiled, with its weights loaded strictly."""
    model = compile_graph(imported.graph)
    model.load_state_dict(imported.state_dict, strict=True)
    model.eval()
    with torch.inference_mode():
        return model(torch.from_numpy(x)).numpy()


def rel_diff(got: np.ndarray, want: np.ndarray) -> float:
    """Largest absolute difference over the largest |expected| value."""
    assert got.shape == want.shape, (got.shape, want.shape)
    return float(np.abs(got - want).max() / max(np.abs(want).max(), 1e-12))


def sample(shape: tuple[int, int, int] = (3, 32, 32), batch: int = 2,
           seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((batch, *shape)).astype(np.float32)
