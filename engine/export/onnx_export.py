"""ONNX export with the dynamo exporter, checked by ``onnx.checker`` and onnxruntime.

A file that merely exists proves little, so every export is verified before it is
moved into place: the ONNX checker (with shape inference) must accept it, and
onnxruntime must reproduce PyTorch's output on seeded random input at two batch
sizes, which also proves that the batch axis really is dynamic. With ``dynamic_size``
(SPEC §7, fully convolutional designs only) H and W are dynamic too, and the check also
runs at a second, larger input size.
"""

from __future__ import annotations

import contextlib
import io
import logging
import math
import os
import warnings
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import fx

from ..analysis import analyze
from ..checkpoint import weights_mismatch
from ..compile import compile_graph, module_names
from ..graph import Graph
from ..units import human_bytes
from .errors import ExportError
from .files import NOTHING_LEFT, staged_output
from .metadata import onnx_metadata

MIN_OPSET = 17
# torch.export treats sizes 0 and 1 as constants, so the example batch must be larger
# for the batch axis to stay symbolic.
_EXAMPLE_BATCH = 2
# Loggers whose warnings (e.g. "torchvision is not installed") would clutter the one
# line the command line prints.
_NOISY_LOGGERS = ("torch.onnx", "torch.export", "torch._export", "onnxscript", "onnx_ir")

Shape3 = tuple[int, int, int]


@dataclass
class OnnxReport:
    """What was written and how closely onnxruntime matches PyTorch.

    ``max_rel_diff`` is the largest absolute difference over the largest ``|PyTorch
    output|``, the worst over ``batches_checked``; ``ok`` says it is within
    ``tolerance``. The file is written even when it is not, so it can be inspected.
    """

    path: Path
    opset: int
    input_names: list[str]
    output_names: list[str]
    max_abs_diff: float
    max_rel_diff: float
    batches_checked: tuple[int, ...]
    ok: bool
    # (H, W) of the first Input at every size checked; more than one for --dynamic-size
    sizes_checked: tuple[tuple[int, int], ...] = ()
    tolerance: float = 1e-4
    size_bytes: int = 0
    data_path: Path | None = None  # the weights, for a model too large for one file

    def describe(self) -> str:
        """One line for the command line and the status bar."""
        size = human_bytes(self.size_bytes)
        if self.data_path is not None:
            size += f", weights in {self.data_path.name}"
        batches = _and_list([str(b) for b in self.batches_checked])
        diff = f"max abs diff {self.max_abs_diff:.2g} (rel {self.max_rel_diff:.2g})"
        if self.ok:
            verdict = f"onnxruntime agrees with PyTorch: {diff}"
        else:
            verdict = (f"onnxruntime DIFFERS from PyTorch beyond the tolerance "
                       f"{self.tolerance:g}: {diff}")
        sizes = ""
        if len(self.sizes_checked) > 1:
            sizes = (" and at " + _and_list([f"{h}×{w}" for h, w in self.sizes_checked])
                     + " (H and W dynamic)")
        return (f"ONNX opset {self.opset} written to {self.path} ({size}); {verdict} "
                f"at batch {batches}{sizes}")


def export_onnx(graph: Graph, path: str | os.PathLike, *,
                state_dict: Mapping[str, torch.Tensor] | None = None,
                input_shape: Shape3 | Mapping[str, Shape3] | None = None,
                opset: int = 18, check_batches: Sequence[int] = (1, 7),
                tolerance: float = 1e-4, seed: int = 0,
                dynamic_size: bool = False,
                metadata: Mapping[str, str] | None = None) -> OnnxReport:
    """Write ``graph`` as an ONNX model with named inputs and a dynamic batch axis.

    The inputs are named after the Input nodes and the output after the Output node.
    ``input_shape`` replaces the Input blocks' ``(C, H, W)`` (one shape for every Input,
    or a mapping by node id), e.g. to check a large network quickly at a smaller size.
    ``dynamic_size`` makes H and W dynamic axes too (named ``height`` and ``width``),
    checked at the design's size and at a larger one (:func:`engine.fcn.larger_sizes`);
    a design that is not fully convolutional is refused, naming the block that fixes
    its size. ``metadata`` becomes the model's ``metadata_props`` (SPEC §7; by default
    what the design says, :func:`engine.export.metadata.onnx_metadata`). Raises
    :class:`engine.GraphError` for an invalid graph and :class:`ExportError` when the
    exporter, the checker or onnxruntime fails, or the file cannot be written.
    """
    path = Path(path)
    if opset < MIN_OPSET:
        raise ValueError(f"opset {opset} is too old for the exporter; use {MIN_OPSET} or newer")
    batches = tuple(check_batches)
    if not batches or any(b < 1 for b in batches):
        raise ValueError(f"check_batches {batches!r} must be batch sizes ≥ 1")
    if input_shape is not None:
        graph = with_input_shapes(graph, input_shape)
    report = analyze(graph)
    model = compile_graph(graph, report)  # GraphError for an invalid graph
    check_shapes = [None]  # None: the design's own shapes
    if dynamic_size:
        check_shapes += [_dynamic_size_check(graph)]
    if state_dict is not None:
        _load_weights(model, state_dict)
    model.eval()
    _without_inplace(model)
    node_of = {name: n for n, name in module_names(report.nodes).items()}
    placeholders = [p.target for p in model.graph.nodes if p.op == "placeholder"]
    input_names = [node_of[p] for p in placeholders]
    shapes = [report.nodes[n].output_shape for n in input_names]
    output_name = report.output_id
    runs = [[tuple(s) if larger is None else (s[0], *larger[n])
             for n, s in zip(input_names, shapes, strict=True)] for larger in check_shapes]

    with staged_output(path) as stage:
        staged = stage / path.name
        program = _run_exporter(model, shapes, input_names, output_name, opset, dynamic_size)
        program.model.metadata_props.update(
            onnx_metadata(report) if metadata is None else dict(metadata))
        program.save(str(staged))  # over 1.5 GiB of weights go to <name>.data beside it
        del program
        _check(staged)
        abs_diff, rel_diff = _compare(model, staged, input_names, runs, batches, seed)
        size = sum(f.stat().st_size for f in stage.iterdir())
        has_data = (stage / (path.name + ".data")).exists()
    return OnnxReport(
        path=path, opset=opset, input_names=input_names, output_names=[output_name],
        max_abs_diff=abs_diff, max_rel_diff=rel_diff, batches_checked=batches,
        ok=rel_diff <= tolerance, tolerance=tolerance, size_bytes=size,
        data_path=path.with_name(path.name + ".data") if has_data else None,
        sizes_checked=tuple(tuple(r[0][1:]) for r in runs),
    )


def _dynamic_size_check(graph: Graph) -> dict[str, tuple[int, int]]:
    """The larger ``(H, W)`` per Input at which a ``dynamic_size`` export is checked, or
    ExportError naming the block that keeps the design from running at any size."""
    from ..fcn import fully_convolutional_blocker, larger_sizes

    blocker = fully_convolutional_blocker(graph)
    if blocker is not None:
        raise ExportError(f"--dynamic-size needs a fully convolutional design, and "
                          f"{blocker[1]}; {NOTHING_LEFT}")
    return larger_sizes(graph)


def with_input_shapes(graph: Graph, shape: Shape3 | Mapping[str, Shape3]) -> Graph:
    """A copy of ``graph`` whose Input blocks have the given ``(C, H, W)``."""
    copy = graph.copy()
    inputs = [n for n in copy.nodes if copy.type_of(n) == "Input"]
    shapes = dict(shape) if isinstance(shape, Mapping) else dict.fromkeys(inputs, shape)
    unknown = set(shapes) - set(inputs)
    if unknown:
        raise ValueError(f"input_shape names {', '.join(sorted(unknown))}, which "
                         f"{'is' if len(unknown) == 1 else 'are'} not Input blocks "
                         f"(the Inputs: {', '.join(inputs)})")
    for n, s in shapes.items():
        if len(s) != 3:
            raise ValueError(f"input_shape {tuple(s)} for '{n}' must be (C, H, W)")
        for key, value in zip(("channels", "height", "width"), s, strict=True):
            copy.set_param(n, key, int(value))
    return copy


def _load_weights(model: torch.nn.Module, state_dict: Mapping[str, torch.Tensor]) -> None:
    problem = weights_mismatch(model, state_dict)
    if problem:
        raise ExportError(f"the weights do not fit this graph (were they trained on another "
                          f"version of it, or at another input size?): {problem}")
    model.load_state_dict(state_dict, strict=True)


def _without_inplace(model: torch.nn.Module) -> None:
    """Turn off in-place activations: ONNX has none, and torch.export must rewrite each
    one, which makes exporting MobileNetV2 take half as long again."""
    for m in model.modules():
        if getattr(m, "inplace", False):
            m.inplace = False


@contextlib.contextmanager
def _quiet() -> Iterator[io.StringIO]:
    """Hold back the exporter's progress lines, warnings and log records, so that the
    command line shows only our one-line result; the text is kept for error messages."""
    captured = io.StringIO()
    loggers = [logging.getLogger(name) for name in _NOISY_LOGGERS]
    levels = [logger.level for logger in loggers]
    try:
        for logger in loggers:
            logger.setLevel(logging.ERROR)
        with (warnings.catch_warnings(), contextlib.redirect_stdout(captured),
              contextlib.redirect_stderr(captured)):
            warnings.simplefilter("ignore")
            yield captured
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


def _dynamic_axes(input_names: list[str], shapes: list, dynamic_size: bool
                  ) -> tuple[dict, ...]:
    """torch.export's ``dynamic_shapes``: batch always, H and W for ``dynamic_size``,
    named ``height`` and ``width``; Inputs of the same size share them (a design that
    adds two inputs needs them equal), an Input of another size gets ``<id>_height``."""
    from torch.export import Dim

    batch = Dim("batch")
    dims: dict[tuple[int, int], tuple] = {}
    axes = []
    for name, shape in zip(input_names, shapes, strict=True):
        if not dynamic_size:
            axes.append({0: batch})
            continue
        size = tuple(shape[1:])
        if size not in dims:
            prefix = f"{name}_" if dims else ""
            dims[size] = (Dim(prefix + "height"), Dim(prefix + "width"))
        axes.append({0: batch, 2: dims[size][0], 3: dims[size][1]})
    return tuple(axes)


def _run_exporter(model: fx.GraphModule, shapes: list, input_names: list[str],
                  output_name: str, opset: int, dynamic_size: bool = False):
    example = tuple(torch.zeros(_EXAMPLE_BATCH, *s) for s in shapes)
    with _quiet() as captured:
        try:
            return torch.onnx.export(
                model, example, dynamo=True, opset_version=opset, verbose=False,
                input_names=input_names, output_names=[output_name],
                dynamic_shapes=_dynamic_axes(input_names, shapes, dynamic_size),
            )
        except Exception as exc:  # the exporter raises many types; all mean "failed"
            reason = _first_lines(str(exc)) or _first_lines(captured.getvalue()) \
                or type(exc).__name__
            raise ExportError(f"the ONNX exporter failed: {reason}; {NOTHING_LEFT}") from exc


def _check(file: Path) -> None:
    import onnx

    try:
        # by path, so that models with external data are checked too
        onnx.checker.check_model(str(file), full_check=True)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as exc:
        raise ExportError(f"onnx.checker rejects the exported model: "
                          f"{_first_lines(str(exc))}; {NOTHING_LEFT}") from exc


def _compare(model: fx.GraphModule, file: Path, input_names: list[str], runs: list[list],
             batches: tuple[int, ...], seed: int) -> tuple[float, float]:
    """Worst absolute and relative difference between onnxruntime and PyTorch, at every
    batch size for every list of input shapes in ``runs``."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3  # errors only
    options.intra_op_num_threads = torch.get_num_threads()
    session = ort.InferenceSession(str(file), options, providers=["CPUExecutionProvider"])
    generator = torch.Generator().manual_seed(seed)
    worst_abs = worst_rel = 0.0
    for shapes, b in ((shapes, b) for shapes in runs for b in batches):
        at = f"batch {b}" if len(runs) == 1 else f"batch {b} at {shapes[0][1]}×{shapes[0][2]}"
        xs = [torch.randn(b, *s, generator=generator) for s in shapes]
        feeds = {name: x.numpy().copy() for name, x in zip(input_names, xs, strict=True)}
        with torch.inference_mode():
            expected = model(*xs).numpy()
        try:
            (got,) = session.run(None, feeds)
        except Exception as exc:  # onnxruntime's errors share no useful base class
            raise ExportError(f"onnxruntime cannot run the exported model at {at}: "
                              f"{_first_lines(str(exc))}; {NOTHING_LEFT}") from exc
        if got.shape != expected.shape:
            axis = ("the batch axis was not" if len(runs) == 1
                    else "the batch, height and width axes were not all")
            raise ExportError(f"at {at} onnxruntime returns shape {list(got.shape)} but "
                              f"PyTorch {list(expected.shape)}: {axis} exported as "
                              f"dynamic; {NOTHING_LEFT}")
        abs_diff, rel_diff = _difference(got, expected)
        worst_abs, worst_rel = max(worst_abs, abs_diff), max(worst_rel, rel_diff)
    del session  # release the file before it is moved into place
    return worst_abs, worst_rel


def _difference(got: np.ndarray, expected: np.ndarray) -> tuple[float, float]:
    """Largest absolute difference, and that over the largest |expected|. NaN in both
    at the same place agrees; NaN in one only is an infinite difference (a NaN would
    otherwise pass every ``<=`` test)."""
    diff = np.abs(got.astype(np.float64) - expected.astype(np.float64))
    diff[np.isnan(got) & np.isnan(expected)] = 0.0
    abs_diff = float(np.max(diff, initial=0.0))
    if math.isnan(abs_diff):
        return math.inf, math.inf
    scale = float(np.max(np.abs(np.nan_to_num(expected)), initial=0.0))
    return abs_diff, abs_diff / max(scale, float(np.finfo(np.float32).tiny))


def _first_lines(text: str, count: int = 3) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return " ".join(lines[:count])


def _and_list(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]
