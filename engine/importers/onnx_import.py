"""``import_onnx``: an ONNX file (either of torch's exporters, opset 13+) as a design.

The file is read once with its weights (inline or in an external ``.data`` file);
shapes come from ONNX shape inference with the input size fixed, so operators that
depend on sizes (``auto_pad``, ``Reshape``) are decided from real numbers. Only the
*data path* is mapped: the nodes the output depends on through tensors, not through
the shape computations (``Shape`` → ``Gather`` → ``Concat`` → ``Reshape``'s second
input) that exporters emit and that a Flatten block makes unnecessary. Every operator
on the data path without a block is listed before anything is built.
"""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from ..graph import ID_PATTERN
from .builder import DesignBuilder, Imported, ImportModelError, NeedsInputShape, UnsupportedModel
from .grouping import group_residuals
from .onnx_context import Context
from .onnx_ops import CONVERTERS, DATA_INPUTS, DROPPED

Shape3 = tuple[int, int, int]


def import_onnx(path: str | os.PathLike, input_shape: Shape3 | None = None) -> Imported:
    """Import the ONNX model at ``path``; ``input_shape`` ``(C, H, W)`` fixes an input whose
    size the file leaves open. Raises :class:`UnsupportedModel` (listing operators) or
    :class:`ImportModelError` (an unreadable file, an open input size, ...)."""
    path = Path(path)
    model = _load(path)
    graph = model.graph
    initializers = {t.name: t for t in graph.initializer}
    inputs = [i for i in graph.input if i.name not in initializers]
    if not inputs:
        raise ImportModelError(f"{path}: the model has no input")
    if len(graph.output) != 1:
        raise UnsupportedModel(reasons=[
            f"the model has {len(graph.output)} outputs "
            f"({', '.join(o.name for o in graph.output)}); a Convas design has one Output"])
    sizes = {i.name: _input_size(i, input_shape, path) for i in inputs}
    shapes = _infer_shapes(model, sizes)
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)

    ctx = Context(model=model, shapes=shapes, opset=opset, initializers=initializers,
                  builder=DesignBuilder(_name(path), path.name))
    data_nodes = _data_path(graph, ctx)
    unknown = _unknown(data_nodes)
    b = ctx.builder
    for i in inputs:
        c, h, w = sizes[i.name]
        ctx.values[i.name] = b.add(i.name, "Input", {"channels": c, "height": h, "width": w},
                                   [])
    for node in data_nodes:
        known = node.op_type in CONVERTERS or node.op_type in DROPPED
        if node.domain not in ("", "ai.onnx") or not known:
            continue  # listed in ``unknown``; what it feeds is skipped
        if node.op_type in DROPPED:
            ctx.alias(node.output[0], node.input[0])
            b.drop(node.op_type)
            continue
        CONVERTERS[node.op_type](ctx, node)
    out = graph.output[0].name
    if unknown or b.reasons:
        raise UnsupportedModel(operators=unknown, reasons=b.reasons)
    if out not in ctx.values:
        raise ImportModelError(f"{path}: the output {out!r} is not computed from the input")
    out_shape = shapes.get(out)
    params = {}
    if (out_shape is not None and len(out_shape) == 4 and len(inputs) == 1
            and tuple(out_shape[2:]) == sizes[inputs[0].name][1:]):
        params["task"] = "segmentation"
    b.add(out if ID_PATTERN.match(out) else "output", "Output", params, [ctx.values[out]])
    group_residuals(b)
    ctx.add_notes()
    return b.finish()


def _load(path: Path) -> Any:
    """The model with its weights, or a clear error for anything that is not one."""
    import onnx
    from google.protobuf.message import DecodeError

    if not path.is_file():
        raise ImportModelError(f"{path}: no such file")
    try:
        model = onnx.load(str(path))
    except (DecodeError, ValueError, RuntimeError, UnicodeDecodeError) as exc:
        raise ImportModelError(
            f"{path} is not a readable ONNX model (truncated, damaged or another kind of file: "
            f"{_first_line(exc)}); export it again, or check the download") from None
    except (OSError, onnx.checker.ValidationError) as exc:
        raise ImportModelError(
            f"{path}: its weights cannot be read ({_first_line(exc)}); an ONNX file with "
            f"external data needs its .data file beside it, under the name it was saved "
            f"with") from None
    if not model.graph.node or not model.opset_import or model.ir_version < 3:
        raise ImportModelError(f"{path} is not an ONNX model (no operators in it): export "
                               f"the network with torch.onnx.export, or check the file")
    return model


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:200] if text else type(exc).__name__


def _input_size(value: Any, wanted: Shape3 | None, path: Path) -> Shape3:
    """``(C, H, W)`` of an NCHW input: the file's fixed sizes, or ``wanted`` for open ones."""
    tensor = value.type.tensor_type
    dims = [d.dim_value if d.HasField("dim_value") else None for d in tensor.shape.dim]
    if len(dims) != 4:
        raise UnsupportedModel(reasons=[
            f"input {value.name!r} has {len(dims)} dimensions; Convas designs take image "
            f"batches N×C×H×W"])
    fixed = dims[1:]
    if wanted is not None:
        for have, want, what in zip(fixed, wanted, ("channels", "height", "width"),
                                    strict=True):
            if have is not None and have != want:
                raise ImportModelError(
                    f"--input-shape gives {want} {what}, but {path.name} fixes its input "
                    f"{value.name!r} at {'×'.join(str(d) for d in fixed)}: leave out "
                    f"--input-shape or give that size")
        return tuple(int(v) for v in wanted)  # type: ignore[return-value]
    if any(d is None or d <= 0 for d in fixed):
        shown = "×".join("?" if d is None else str(d) for d in fixed)
        raise NeedsInputShape(
            f"the input {value.name!r} of {path.name} has no fixed size (C×H×W is {shown}): "
            f"give the size to import it at with --input-shape C,H,W (e.g. 3,224,224)")
    return tuple(int(v) for v in fixed)  # type: ignore[return-value]


def _infer_shapes(model: Any, sizes: dict[str, Shape3]) -> dict[str, tuple[int, ...] | None]:
    """Every value's shape at batch 1, with the inputs fixed at ``sizes``."""
    import onnx

    skeleton = onnx.ModelProto()
    skeleton.CopyFrom(model)
    for t in skeleton.graph.initializer:  # shapes need the weights' dims, not their values
        if np.prod(t.dims) > 64 and t.data_type == onnx.TensorProto.FLOAT:
            t.ClearField("raw_data")
            t.ClearField("float_data")
    del skeleton.graph.value_info[:]
    for i in skeleton.graph.input:
        if i.name in sizes:
            dims = i.type.tensor_type.shape.dim
            for d, v in zip(dims, (1, *sizes[i.name]), strict=True):
                d.Clear()
                d.dim_value = v
    try:
        inferred = onnx.shape_inference.infer_shapes(skeleton, data_prop=True)
    except Exception as exc:  # onnx raises several types for models it cannot follow
        raise ImportModelError(f"ONNX shape inference fails on this model "
                               f"({_first_line(exc)}); check it with onnx.checker") from None
    shapes: dict[str, tuple[int, ...] | None] = {}
    for v in (*inferred.graph.input, *inferred.graph.value_info, *inferred.graph.output):
        dims = v.type.tensor_type.shape.dim
        known = [d.dim_value if d.HasField("dim_value") else None for d in dims]
        has_shape = v.type.tensor_type.HasField("shape")
        shapes[v.name] = tuple(known) if has_shape and None not in known else None
    return shapes


def _data_path(graph: Any, ctx: Context) -> list[Any]:
    """Nodes the output depends on through tensor data, in file (topological) order."""
    needed: set[int] = set()
    stack = [graph.output[0].name]
    while stack:
        value = stack.pop()
        node = ctx.producer(value)
        if node is None or id(node) in needed or ctx.is_constant(value):
            continue
        needed.add(id(node))
        picks = DATA_INPUTS.get(node.op_type)
        names = list(node.input) if picks is None else [
            node.input[i] for i in picks if i < len(node.input)]
        stack += [n for n in names if n]
    return [node for node in graph.node if id(node) in needed]


def _unknown(nodes: list[Any]) -> list[tuple[str, int, str]]:
    """``(operator, count, first node's name)`` for every operator without a block."""
    counts: Counter = Counter()
    example: dict[str, str] = {}
    for node in nodes:
        op = node.op_type if node.domain in ("", "ai.onnx") else f"{node.domain}.{node.op_type}"
        if op in CONVERTERS or op in DROPPED:
            continue
        counts[op] += 1
        example.setdefault(op, node.name or node.output[0])
    return [(op, c, example[op]) for op, c in counts.most_common()]


def _name(path: Path) -> str:
    """The design's name: the file's, which the user chose (graph names are often
    generated, ``main_graph`` or ``torch_jit``)."""
    return path.name.removesuffix(".onnx") or "Imported"

