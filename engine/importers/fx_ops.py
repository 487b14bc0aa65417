"""torch modules, functions and tensor methods → Convas blocks, for the torch.fx importer.

Each mapper gets what fx traced (a module, or a call node), the input shapes and the
output shape (batch included) and returns ``(block type, params, weights)``, None for
a call that passes its input on (Identity, functional dropout, a one-tensor cat), or
a sentence saying why this particular use has no block.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import numpy as np
import torch
from torch import fx, nn
from torch.nn import functional as F

from .builder import pair

Result = tuple[str, dict[str, Any], dict[str, np.ndarray]] | str | None
Plan = Callable[[fx.Node, list], Result]


def module_weights(m: nn.Module) -> dict[str, np.ndarray]:
    """The module's state_dict as numpy arrays, as the builder keeps weights."""
    return {k: v.detach().cpu().numpy() for k, v in m.state_dict().items()}


def _two(v: Any) -> tuple[int, int]:
    return (int(v), int(v)) if isinstance(v, int) else (int(v[0]), int(v[1]))


def _act(function: str, **extra: Any) -> Result:
    return ("Activation", {"function": function, **extra}, {})


# ---- modules -------------------------------------------------------------------------


def conv2d(m: nn.Conv2d, shapes: list, out: Any) -> Result:
    if m.padding_mode != "zeros":
        return f"padding_mode {m.padding_mode!r} has no Conv2d parameter (zeros only)"
    k, d = _two(m.kernel_size), _two(m.dilation)
    same = tuple(dd * (kk - 1) // 2 for kk, dd in zip(k, d, strict=True))
    odd = all((dd * (kk - 1)) % 2 == 0 for kk, dd in zip(k, d, strict=True))
    if m.padding == "same":
        if not odd:
            return "padding 'same' with an even kernel pads one side more; no block does"
        pad = same
    elif m.padding == "valid":
        pad = (0, 0)
    else:
        pad = _two(m.padding)
    params: dict[str, Any] = {"out_channels": m.out_channels, "kernel_size": pair(k)}
    if _two(m.stride) != (1, 1):
        params["stride"] = pair(m.stride)
    if d != (1, 1):
        params["dilation"] = pair(d)
    if m.groups != 1:
        params["groups"] = m.groups
    if not (odd and pad == same):
        params["padding"] = pair(pad)
    params["bias"] = m.bias is not None
    return ("Conv2d", params, module_weights(m))


def conv_transpose2d(m: nn.ConvTranspose2d, shapes: list, out: Any) -> Result:
    if _two(m.dilation) != (1, 1) or m.padding_mode != "zeros":
        return "dilation or padding_mode on a transposed convolution has no parameter"
    params = {"out_channels": m.out_channels, "kernel_size": pair(m.kernel_size),
              "stride": pair(m.stride), "padding": pair(m.padding),
              "output_padding": pair(m.output_padding), "groups": m.groups,
              "bias": m.bias is not None}
    return ("ConvTranspose2d", params, module_weights(m))


def linear(m: nn.Linear, shapes: list, out: Any) -> Result:
    if shapes and shapes[0] is not None and len(shapes[0]) != 2:
        return f"a Linear on a {len(shapes[0]) - 1}-D tensor; the Linear block takes vectors"
    return ("Linear", {"out_features": m.out_features, "bias": m.bias is not None},
            module_weights(m))


def batchnorm(m: nn.modules.batchnorm._BatchNorm, shapes: list, out: Any) -> Result:
    if not m.track_running_stats:
        return "a BatchNorm without running statistics normalises by the batch at inference"
    params: dict[str, Any] = {"eps": float(m.eps)}
    if m.momentum is not None and m.momentum != 0.1:
        params["momentum"] = float(m.momentum)
    if not m.affine:
        params["affine"] = False
    return ("BatchNorm", params, module_weights(m))


def _pool(kind: str, m: Any) -> Result:
    if getattr(m, "dilation", 1) not in (1, (1, 1)) or getattr(m, "return_indices", False):
        return "dilated pooling and pooling indices have no block"
    if getattr(m, "divisor_override", None) is not None:
        return "divisor_override has no AvgPool2d parameter"
    k = _two(m.kernel_size)
    s = _two(m.stride) if m.stride not in (None, ()) else k
    params: dict[str, Any] = {"kernel_size": pair(k)}
    if s != k:
        params["stride"] = pair(s)
    if _two(m.padding) != (0, 0):
        params["padding"] = pair(m.padding)
    if m.ceil_mode:
        params["ceil_mode"] = True
    if kind == "AvgPool2d" and not m.count_include_pad:
        params["count_include_pad"] = False
    return (kind, params, {})


def adaptive_avg(m: Any, shapes: list, out: Any) -> Result:
    size = m.output_size
    size = (size, size) if isinstance(size, int) else tuple(size)
    if None in size:
        return "an output size of None (keep the input's) has no parameter"
    return ("AdaptiveAvgPool2d", {} if size == (1, 1) else {"output_size": pair(size)}, {})


def flatten_module(m: nn.Flatten, shapes: list, out: Any) -> Result:
    if m.start_dim != 1 or m.end_dim != -1:
        return "only a flatten from dim 1 to the end has a block"
    return ("Flatten", {}, {})


def softmax_module(m: nn.Softmax, shapes: list, out: Any) -> Result:
    return _softmax(m.dim, shapes)


def _softmax(dim: Any, shapes: list) -> Result:
    rank = len(shapes[0]) if shapes and shapes[0] is not None else 0
    if dim is None or (rank and int(dim) % rank != 1):
        return f"softmax over dim {dim}; the Softmax activation works across channels (dim 1)"
    return _act("softmax")


def upsample_module(m: nn.Upsample, shapes: list, out: Any) -> Result:
    return _upsample(m.mode, m.align_corners, shapes, out)


def _upsample(mode: str, align: Any, shapes: list, out: Any) -> Result:
    before = shapes[0]
    if before is None or out is None or mode not in ("nearest", "bilinear") or align:
        return f"upsampling ({mode}, align_corners {align}) other than nearest or bilinear"
    fh, fw = out[2] / before[2], out[3] / before[3]
    if fh != fw or fh != int(fh):
        return "upsampling by a factor other than one whole number on H and W"
    return ("Upsample", {"scale_factor": int(fh), "mode": mode}, {})


MODULES: dict[type, Callable[[Any, list, Any], Result]] = {
    nn.Conv2d: conv2d, nn.ConvTranspose2d: conv_transpose2d, nn.Linear: linear,
    nn.BatchNorm2d: batchnorm, nn.BatchNorm1d: batchnorm,
    nn.ReLU: lambda m, s, o: _act("relu"), nn.ReLU6: lambda m, s, o: _act("relu6"),
    nn.LeakyReLU: lambda m, s, o: _act("leaky_relu", negative_slope=float(m.negative_slope)),
    nn.ELU: lambda m, s, o: _act("elu") if m.alpha == 1.0 else "ELU alpha other than 1",
    nn.GELU: lambda m, s, o: _act("gelu") if m.approximate == "none"
    else "the tanh approximation of GELU has no block",
    nn.SiLU: lambda m, s, o: _act("silu"), nn.Sigmoid: lambda m, s, o: _act("sigmoid"),
    nn.Tanh: lambda m, s, o: _act("tanh"), nn.Hardswish: lambda m, s, o: _act("hardswish"),
    nn.Hardtanh: lambda m, s, o: _act("relu6") if (m.min_val, m.max_val) == (0, 6)
    else "Hardtanh other than 0–6",
    nn.Softmax: softmax_module,
    nn.MaxPool2d: lambda m, s, o: _pool("MaxPool2d", m),
    nn.AvgPool2d: lambda m, s, o: _pool("AvgPool2d", m),
    nn.AdaptiveAvgPool2d: adaptive_avg, nn.Flatten: flatten_module,
    nn.Dropout: lambda m, s, o: ("Dropout", {"p": float(m.p)}, {}),
    nn.Dropout2d: lambda m, s, o: None, nn.Identity: lambda m, s, o: None,
    nn.Upsample: upsample_module,
}


# ---- functions and methods -----------------------------------------------------------


def _arg(node: fx.Node, index: int, name: str, default: Any = None) -> Any:
    if len(node.args) > index:
        return node.args[index]
    return node.kwargs.get(name, default)


def _add(node: fx.Node, shapes: list, out: Any) -> Result:
    tensors = [a for a in node.args if isinstance(a, fx.Node)]
    if len(tensors) != 2 or len(node.args) != 2 or node.kwargs.get("alpha", 1) != 1:
        return "adding a constant (or a scaled tensor) has no block; Add sums tensors"
    return ("Add", {}, {})


def _cat(node: fx.Node, shapes: list, out: Any) -> Result:
    dim = _arg(node, 1, "dim", 0)
    rank = len(out) if out is not None else 0
    if not rank or int(dim) % rank != 1:
        return f"concatenation along dim {dim}; Concat joins channels (dim 1)"
    return None if len(shapes) == 1 else ("Concat", {}, {})


def _flatten_fn(node: fx.Node, shapes: list, out: Any) -> Result:
    if _arg(node, 1, "start_dim", 0) != 1 or _arg(node, 2, "end_dim", -1) != -1:
        return "only a flatten from dim 1 to the end has a block"
    return ("Flatten", {}, {})


def _view(node: fx.Node, shapes: list, out: Any) -> Result:
    before = shapes[0]
    if before is None or out is None or len(out) != 2 or out[0] != before[0]:
        return f"a reshape to {list(out) if out else '?'} is not a flatten to [N, -1]"
    return ("Flatten", {}, {})


def _mean(node: fx.Node, shapes: list, out: Any) -> Result:
    dims = _arg(node, 1, "dim")
    keep = _arg(node, 2, "keepdim", False)
    rank = len(shapes[0]) if shapes[0] is not None else 0
    dims = [dims] if isinstance(dims, int) else list(dims or [])
    if rank != 4 or sorted(int(d) % 4 for d in dims) != [2, 3]:
        return f"a mean over dims {dims}; Convas averages over H and W only"
    return ("AdaptiveAvgPool2d", {}, {}) if keep else ("GlobalAvgPool", {}, {})


def _pool_fn(kind: str) -> Callable[[fx.Node, list, Any], Result]:
    def convert(node: fx.Node, shapes: list, out: Any) -> Result:
        args = SimpleNamespace(kernel_size=_arg(node, 1, "kernel_size"),
                               stride=_arg(node, 2, "stride"),
                               padding=_arg(node, 3, "padding", 0))
        if kind == "MaxPool2d":
            args.dilation = _arg(node, 4, "dilation", 1)
            args.ceil_mode = _arg(node, 5, "ceil_mode", False)
            args.return_indices = _arg(node, 6, "return_indices", False)
        else:
            args.ceil_mode = _arg(node, 4, "ceil_mode", False)
            args.count_include_pad = _arg(node, 5, "count_include_pad", True)
            args.divisor_override = _arg(node, 6, "divisor_override")
        return _pool(kind, args)

    return convert


def _adaptive_fn(node: fx.Node, shapes: list, out: Any) -> Result:
    return adaptive_avg(SimpleNamespace(output_size=_arg(node, 1, "output_size")), shapes,
                        out)


def _leaky(node: fx.Node, shapes: list, out: Any) -> Result:
    return _act("leaky_relu", negative_slope=float(_arg(node, 1, "negative_slope", 0.01)))


def _hardtanh(node: fx.Node, shapes: list, out: Any) -> Result:
    lo, hi = _arg(node, 1, "min_val", -1.0), _arg(node, 2, "max_val", 1.0)
    return _act("relu6") if (lo, hi) == (0, 6) else "Hardtanh other than 0–6"


def _interpolate(node: fx.Node, shapes: list, out: Any) -> Result:
    return _upsample(_arg(node, 3, "mode", "nearest"), _arg(node, 4, "align_corners"),
                     shapes, out)


def _simple(function: str) -> Callable[[fx.Node, list, Any], Result]:
    return lambda node, shapes, out: _act(function)


FUNCTIONS: dict[Any, Callable[[fx.Node, list, Any], Result]] = {
    operator.add: _add, operator.iadd: _add, torch.add: _add,
    torch.cat: _cat, torch.concat: _cat, torch.flatten: _flatten_fn, torch.mean: _mean,
    torch.reshape: _view,
    torch.relu: _simple("relu"), F.relu: _simple("relu"), torch.relu_: _simple("relu"),
    F.relu6: _simple("relu6"), F.hardtanh: _hardtanh, F.leaky_relu: _leaky,
    torch.sigmoid: _simple("sigmoid"), F.sigmoid: _simple("sigmoid"),
    torch.tanh: _simple("tanh"), F.tanh: _simple("tanh"), F.gelu: _simple("gelu"),
    F.silu: _simple("silu"), F.hardswish: _simple("hardswish"), F.elu: _simple("elu"),
    F.softmax: lambda n, s, o: _softmax(_arg(n, 1, "dim"), s),
    torch.softmax: lambda n, s, o: _softmax(_arg(n, 1, "dim"), s),
    F.max_pool2d: _pool_fn("MaxPool2d"), F.avg_pool2d: _pool_fn("AvgPool2d"),
    F.adaptive_avg_pool2d: _adaptive_fn, F.dropout: lambda n, s, o: None,
    F.interpolate: _interpolate,
}

METHODS: dict[str, Callable[[fx.Node, list, Any], Result]] = {
    "view": _view, "reshape": _view, "flatten": _flatten_fn, "mean": _mean,
    "relu": _simple("relu"), "relu_": _simple("relu"), "sigmoid": _simple("sigmoid"),
    "tanh": _simple("tanh"), "add": _add, "add_": _add,
    "softmax": lambda n, s, o: _softmax(_arg(n, 1, "dim"), s),
}
