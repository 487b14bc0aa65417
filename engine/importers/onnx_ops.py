"""ONNX operators → Convas blocks, one converter each (SPEC §8's list).

A converter reads the node's attributes and constant inputs, adds one block (or
none, for an operator that only renames a value) through the builder, and records
which block now holds each output. A use no block reproduces (asymmetric padding
that changes the result, a Clip other than 0–6, a Reshape that is not a flatten) is
refused with a sentence naming the node, and the import goes on so that every such
node is reported at once.
"""

from __future__ import annotations

import ast
from collections.abc import Callable
from typing import Any

import numpy as np

from .builder import identity_batchnorm, pair
from .onnx_context import Context, attrs

# Operators that only pass their first input on (in inference).
DROPPED = ("Identity", "Dropout")
# Which inputs of an operator carry data the output depends on (the rest are weights,
# shapes or options); an operator not listed depends on all of them.
DATA_INPUTS: dict[str, tuple[int, ...]] = {
    op: (0,) for op in ("Conv", "ConvTranspose", "Gemm", "BatchNormalization", "Relu", "Clip",
                        "LeakyRelu", "Sigmoid", "Tanh", "HardSwish", "Gelu", "Elu", "Softmax",
                        "MaxPool", "AveragePool", "GlobalAveragePool", "ReduceMean",
                        "Flatten", "Reshape", "Resize", "Dropout", "Identity", "HardSigmoid")}


# ---- padding -------------------------------------------------------------------------


def _pads(ctx: Context, node: Any, a: dict, kernel: tuple[int, int], strides: tuple[int, int],
          dilations: tuple[int, int], ceil: bool = False,
          exact: bool = False) -> tuple[int, int] | None:
    """Symmetric (top, left) padding equivalent to the node's, or None (refused).

    ``auto_pad SAME_*`` is worked out from the input size. Asymmetric padding is
    accepted when the extra rows or columns are never reached by a window (the output
    size is the same with the smaller side's padding on both sides); ``exact`` (average
    pooling that counts padding) needs truly symmetric padding.
    """
    shape = ctx.shape(node.input[0])
    auto = a.get("auto_pad", "NOTSET")
    if auto in ("SAME_UPPER", "SAME_LOWER"):
        if shape is None:
            ctx.refuse(node, f"auto_pad {auto} needs the input size, which shape inference "
                             f"could not tell")
            return None
        pads = []
        for size, k, s, d in zip(shape[2:], kernel, strides, dilations, strict=True):
            total = max((-(-size // s) - 1) * s + d * (k - 1) + 1 - size, 0)
            small = total // 2
            pads.append((small, total - small) if auto == "SAME_UPPER" else (total - small,
                                                                              small))
        begin, end = [p[0] for p in pads], [p[1] for p in pads]
    elif auto == "VALID":
        begin, end = [0, 0], [0, 0]
    else:
        raw = list(a.get("pads", [0, 0, 0, 0]))
        begin, end = raw[:2], raw[2:]
    if begin == end:
        return (int(begin[0]), int(begin[1]))
    if shape is None or exact:
        ctx.refuse(node, f"its padding is asymmetric (top/left {begin}, bottom/right {end}); "
                         f"Convas has no Pad block to reproduce it: re-export the model with "
                         f"symmetric padding")
        return None
    for size, b0, e0, k, s, d in zip(shape[2:], begin, end, kernel, strides, dilations,
                                     strict=True):
        eff = d * (k - 1) + 1
        if b0 > e0 or _count(size + b0 + e0 - eff, s, ceil) != _count(size + 2 * b0 - eff,
                                                                      s, ceil):
            ctx.refuse(node, f"its padding is asymmetric (top/left {begin}, bottom/right "
                             f"{end}) and the extra padding changes the result; Convas has no "
                             f"Pad block to reproduce it: re-export with symmetric padding")
            return None
    return (int(begin[0]), int(begin[1]))


def _count(span: int, s: int, ceil: bool) -> int:
    return (span + (s - 1 if ceil else 0)) // s + 1


def _two(v: Any, default: int = 1) -> tuple[int, int]:
    if v is None:
        return (default, default)
    v = list(v)
    if len(v) != 2:
        raise ValueError(v)
    return (int(v[0]), int(v[1]))


# ---- converters ----------------------------------------------------------------------


def conv(ctx: Context, node: Any) -> None:
    a = attrs(node)
    w = ctx.weight(node, 1, node.name)
    if w is None or w.ndim != 4:
        ctx.refuse(node, "only 2-D convolutions with constant weights map onto Conv2d")
        return
    kernel = (int(w.shape[2]), int(w.shape[3]))
    strides, dil = _two(a.get("strides")), _two(a.get("dilations"))
    pad = _pads(ctx, node, a, kernel, strides, dil)
    if pad is None:
        return
    bias = ctx.weight(node, 2, node.name)
    padding: Any = pad
    if all(k % 2 for k in ((d * (k - 1) + 1) for k, d in zip(kernel, dil, strict=True))) and \
            pad == tuple((d * (k - 1)) // 2 for k, d in zip(kernel, dil, strict=True)):
        padding = "same"
    params: dict[str, Any] = {"out_channels": int(w.shape[0]), "kernel_size": pair(kernel)}
    for key, value, default in (("stride", strides, 1), ("dilation", dil, 1),
                                ("groups", a.get("group", 1), 1)):
        if value != (default, default) and value != default:
            params[key] = pair(value) if isinstance(value, tuple) else int(value)
    if padding != "same":
        params["padding"] = pair(padding)
    params["bias"] = bias is not None
    weights = {"weight": w} | ({"bias": bias} if bias is not None else {})
    wname = node.input[1]
    bn_scope = _folded_batchnorm(node)
    if bn_scope is not None and bias is not None:
        _unfold(ctx, node, params, weights, bn_scope)
        return
    n = ctx.add(node, "Conv2d", params, weights, weight_name=wname)
    if n is not None and bias is not None and wname.startswith("onnx::"):
        ctx.folded.append(n)


def _folded_batchnorm(node: Any) -> str | None:
    """The BatchNorm module the dynamo exporter folded into this Conv (its name scopes
    end in it), or None."""
    meta = {p.key: p.value for p in node.metadata_props}
    try:
        classes = ast.literal_eval(meta.get("pkg.torch.onnx.class_hierarchy", "[]"))
        scopes = ast.literal_eval(meta.get("pkg.torch.onnx.name_scopes", "[]"))
    except (ValueError, SyntaxError):
        return None
    if len(classes) >= 2 and len(scopes) >= 2 and "BatchNorm" in str(classes[-2]):
        return str(scopes[-2])
    return None


def _unfold(ctx: Context, node: Any, params: dict, weights: dict, bn_scope: str) -> None:
    """Conv2d then BatchNorm, as the model had them: the folded weights in the Conv (its
    bias moves to the BatchNorm's shift where the model's Conv had none) and a BatchNorm
    that computes the identity at inference (mean 0, variance 1 − eps), so that the
    design computes the same and can be fine-tuned with its normalisation."""
    had_bias = not node.input[2].endswith(".weight_bias")
    bias = weights.pop("bias")
    params["bias"] = had_bias
    if had_bias:
        weights["bias"] = bias
    conv_id = ctx.add(node, "Conv2d", params, weights, weight_name=node.input[1])
    if conv_id is None:
        return
    bn = identity_batchnorm(np.zeros(bias.shape[0], np.float32) if had_bias else bias)
    n = ctx.builder.add(bn_scope, "BatchNorm", {}, [conv_id], bn)
    ctx.values[node.output[0]] = n
    ctx.unfolded += 1


def conv_transpose(ctx: Context, node: Any) -> None:
    a = attrs(node)
    w = ctx.weight(node, 1, node.name)
    if w is None or w.ndim != 4:
        ctx.refuse(node, "only 2-D transposed convolutions with constant weights map onto "
                         "ConvTranspose2d")
        return
    if _two(a.get("dilations")) != (1, 1) or a.get("auto_pad", "NOTSET") != "NOTSET" \
            or "output_shape" in a:
        ctx.refuse(node, "dilation, auto_pad or output_shape on a transposed convolution "
                         "has no ConvTranspose2d parameter")
        return
    raw = list(a.get("pads", [0, 0, 0, 0]))
    if raw[:2] != raw[2:]:
        ctx.refuse(node, f"its padding {raw} is asymmetric; ConvTranspose2d pads both sides "
                         f"equally")
        return
    group = int(a.get("group", 1))
    bias = ctx.weight(node, 2, node.name)
    params = {"out_channels": int(w.shape[1]) * group, "kernel_size": pair(w.shape[2:]),
              "stride": pair(_two(a.get("strides"))), "padding": pair(raw[:2]),
              "output_padding": pair(_two(a.get("output_padding"), 0)), "groups": group,
              "bias": bias is not None}
    weights = {"weight": w} | ({"bias": bias} if bias is not None else {})
    ctx.add(node, "ConvTranspose2d", params, weights, weight_name=node.input[1])


def gemm(ctx: Context, node: Any) -> None:
    a = attrs(node)
    b = ctx.weight(node, 1, node.name)
    c = ctx.weight(node, 2, node.name)
    if b is None or b.ndim != 2 or a.get("transA", 0):
        ctx.refuse(node, "only x·Wᵀ + b with a constant W (a fully connected layer) maps onto "
                         "Linear")
        return
    w = b if a.get("transB", 0) else b.T
    w = w * float(a.get("alpha", 1.0))
    weights = {"weight": w}
    if c is not None:
        bias = np.broadcast_to(c * float(a.get("beta", 1.0)), (w.shape[0],))
        weights["bias"] = bias
    params = {"out_features": int(w.shape[0]), "bias": c is not None}
    ctx.add(node, "Linear", params, weights, weight_name=node.input[1])


def matmul(ctx: Context, node: Any) -> None:
    b = ctx.weight(node, 1, node.name)
    if b is None or b.ndim != 2 or ctx.is_constant(node.input[0]):
        ctx.refuse(node, "only x·W with a constant 2-D W (a fully connected layer) maps onto "
                         "Linear")
        return
    ctx.add(node, "Linear", {"out_features": int(b.shape[1]), "bias": False},
            {"weight": b.T}, weight_name=node.input[1])


def add(ctx: Context, node: Any) -> None:
    consts = [i for i in node.input if ctx.is_constant(i)]
    if not consts:
        ctx.add(node, "Add", {}, inputs=list(node.input))
        return
    data = [i for i in node.input if not ctx.is_constant(i)]
    src = ctx.values.get(data[0]) if len(data) == 1 else None
    g = ctx.builder.graph
    if (src is not None and g.type_of(src) == "Linear" and not g.params_of(src)["bias"]
            and ctx.consumers(data[0]) == 1):
        bias = ctx.constant(consts[0]).reshape(-1)
        w = ctx.builder.weights[src]["weight"]
        if bias.shape[0] in (1, w.shape[0]):
            ctx.builder.weights[src]["bias"] = np.broadcast_to(bias, (w.shape[0],))
            g.set_param(src, "bias", True)
            ctx.values[node.output[0]] = src
            return
    ctx.refuse(node, "adding a constant tensor is only understood as the bias of a MatMul")


def batchnorm(ctx: Context, node: Any) -> None:
    a = attrs(node)
    if a.get("training_mode", 0) or len([o for o in node.output if o]) > 1:
        ctx.refuse(node, "a BatchNormalization in training mode cannot be imported")
        return
    names = ("weight", "bias", "running_mean", "running_var")
    tensors = [ctx.weight(node, i, node.name) for i in range(1, 5)]
    if any(t is None for t in tensors):
        ctx.refuse(node, "its scale, bias, mean and variance must be constants")
        return
    weights = dict(zip(names, tensors, strict=True))
    weights["num_batches_tracked"] = np.array(0, dtype=np.int64)
    momentum = 1.0 - float(a.get("momentum", 0.9))
    params = {"eps": float(a.get("epsilon", 1e-5)), "momentum": round(momentum, 6)}
    ctx.add(node, "BatchNorm", params, weights, weight_name=node.input[1])


def _activation(function: str) -> Callable[[Context, Any], None]:
    def convert(ctx: Context, node: Any) -> None:
        ctx.add(node, "Activation", {"function": function})

    return convert


def clip(ctx: Context, node: Any) -> None:
    a = attrs(node)
    lo: Any = a.get("min")
    hi: Any = a.get("max")
    for i, name in ((1, "lo"), (2, "hi")):
        if len(node.input) > i and node.input[i]:
            v = ctx.constant(node.input[i])
            if v is None:
                ctx.refuse(node, "its bounds must be constants")
                return
            if name == "lo":
                lo = float(v)
            else:
                hi = float(v)
    if lo == 0 and hi == 6:
        ctx.add(node, "Activation", {"function": "relu6"})
    elif lo == 0 and (hi is None or hi == float("inf")):
        ctx.add(node, "Activation", {"function": "relu"})
    else:
        ctx.refuse(node, f"Clip to [{lo}, {hi}] has no block; only ReLU (0–∞) and ReLU6 "
                         f"(0–6) do")


def leaky_relu(ctx: Context, node: Any) -> None:
    alpha = float(attrs(node).get("alpha", 0.01))
    ctx.add(node, "Activation", {"function": "leaky_relu", "negative_slope": round(alpha, 7)})


def elu(ctx: Context, node: Any) -> None:
    if float(attrs(node).get("alpha", 1.0)) != 1.0:
        ctx.refuse(node, "Elu with alpha other than 1 has no block")
        return
    ctx.add(node, "Activation", {"function": "elu"})


def gelu(ctx: Context, node: Any) -> None:
    if attrs(node).get("approximate", "none") != "none":
        ctx.refuse(node, "the tanh approximation of GELU has no block")
        return
    ctx.add(node, "Activation", {"function": "gelu"})


def softmax(ctx: Context, node: Any) -> None:
    shape = ctx.shape(node.input[0])
    rank = len(shape) if shape else 0
    axis = int(attrs(node).get("axis", 1 if ctx.opset < 13 else -1))
    if rank and axis < 0:
        axis += rank
    if axis != 1 or (ctx.opset < 13 and rank > 2):  # before 13: over all of C×H×W
        ctx.refuse(node, f"softmax over axis {axis}{' and after it' if rank > 2 else ''}; "
                         f"the Softmax activation works across channels (axis 1) alone")
        return
    ctx.add(node, "Activation", {"function": "softmax"})


def _pool(kind: str) -> Callable[[Context, Any], None]:
    def convert(ctx: Context, node: Any) -> None:
        a = attrs(node)
        kernel = _two(a.get("kernel_shape"))
        strides = _two(a.get("strides"))
        if _two(a.get("dilations")) != (1, 1) or len([o for o in node.output if o]) > 1:
            ctx.refuse(node, "dilated pooling and pooling indices have no block")
            return
        ceil = bool(a.get("ceil_mode", 0))
        include = bool(a.get("count_include_pad", 0))
        pad = _pads(ctx, node, a, kernel, strides, (1, 1), ceil,
                    exact=kind == "AvgPool2d" and include)
        if pad is None:
            return
        params: dict[str, Any] = {"kernel_size": pair(kernel)}
        if strides != kernel:
            params["stride"] = pair(strides)
        if pad != (0, 0):
            params["padding"] = pair(pad)
            if kind == "AvgPool2d" and not include:
                params["count_include_pad"] = False
        if ceil:
            params["ceil_mode"] = True
        ctx.add(node, kind, params)

    return convert


def global_average_pool(ctx: Context, node: Any) -> None:
    ctx.add(node, "AdaptiveAvgPool2d", {})


def reduce_mean(ctx: Context, node: Any) -> None:
    a = attrs(node)
    axes = a.get("axes")
    if len(node.input) > 1 and node.input[1]:
        value = ctx.constant(node.input[1])
        axes = None if value is None else value.reshape(-1).tolist()
    rank = len(ctx.shape(node.input[0]) or (0, 0, 0, 0))
    if axes is None or sorted(int(x) % rank for x in axes) != [2, 3] or rank != 4:
        ctx.refuse(node, f"ReduceMean over axes {axes}; Convas averages over H and W only")
        return
    if a.get("keepdims", 1):
        ctx.add(node, "AdaptiveAvgPool2d", {})
    else:
        ctx.add(node, "GlobalAvgPool", {})


def flatten(ctx: Context, node: Any) -> None:
    if int(attrs(node).get("axis", 1)) != 1:
        ctx.refuse(node, "only a Flatten from axis 1 (keeping the batch) has a block")
        return
    ctx.add(node, "Flatten", {})


def reshape(ctx: Context, node: Any) -> None:
    before, after = ctx.shape(node.input[0]), ctx.shape(node.output[0])
    if after is None and before is not None:
        target = shape_value(ctx, node.input[1])
        if target is not None:
            dims = [before[i] if v == 0 and not attrs(node).get("allowzero", 0) else int(v)
                    for i, v in enumerate(target.tolist())]
            if dims.count(-1) == 1:
                known = int(np.prod([d for d in dims if d != -1]))
                dims[dims.index(-1)] = int(np.prod(before)) // max(known, 1)
            after = tuple(dims)
    if before is None or after is None or len(after) != 2 or after[0] != before[0] \
            or after[1] != int(np.prod(before[1:])):
        ctx.refuse(node, f"a Reshape to {list(after) if after else 'an unknown shape'} is not "
                         f"a flatten to [N, -1], the only reshape Convas has a block for")
        return
    ctx.add(node, "Flatten", {})


def shape_value(ctx: Context, value: str, depth: int = 0) -> np.ndarray | None:
    """The integer vector a shape computation yields (``Shape`` of a tensor of known
    shape, ``Gather``, ``Slice``, ``Unsqueeze``, ``Squeeze``, ``Concat``, ``Cast``, and
    constants), or None; exporters compute ``x.view(x.size(0), -1)``'s shape this way."""
    const = ctx.constant(value)
    if const is not None:
        return np.asarray(const, dtype=np.int64)
    node = ctx.producer(value)
    if node is None or depth > 20:
        return None
    ins = [shape_value(ctx, i, depth + 1) if i and node.op_type != "Shape" else None
           for i in node.input]
    a = attrs(node)
    op = node.op_type
    if op == "Shape":
        shape = ctx.shape(node.input[0])
        if shape is None:
            return None
        return np.array(shape[a.get("start", 0):a.get("end", len(shape))], np.int64)
    if any(v is None for v in ins[:1]):
        return None
    if op in ("Cast", "Identity"):
        return ins[0]
    if op == "Gather" and ins[1] is not None:
        return np.take(ins[0], ins[1], axis=a.get("axis", 0))
    if op == "Unsqueeze":
        return ins[0].reshape(-1)
    if op == "Squeeze":
        return ins[0].reshape(-1) if ins[0].size > 1 else ins[0].reshape(())
    if op == "Concat" and all(v is not None for v in ins):
        return np.concatenate([v.reshape(-1) for v in ins])
    if op == "Slice" and ins[1] is not None and ins[2] is not None:
        return ins[0][int(ins[1][0]):int(ins[2][0])]
    return None


def concat(ctx: Context, node: Any) -> None:
    axis = int(attrs(node).get("axis", 1))
    rank = len(ctx.shape(node.output[0]) or (0, 0))
    if axis % rank != 1:
        ctx.refuse(node, f"Concat along axis {axis}; Convas concatenates channels (axis 1)")
        return
    if len(node.input) == 1:  # torch.cat([x]): x itself
        ctx.alias(node.output[0], node.input[0])
        ctx.builder.drop("Concat of one input")
        return
    ctx.add(node, "Concat", {}, inputs=list(node.input))


def resize(ctx: Context, node: Any) -> None:
    a = attrs(node)
    before, after = ctx.shape(node.input[0]), ctx.shape(node.output[0])
    mode = a.get("mode", "nearest")
    how = a.get("coordinate_transformation_mode", "half_pixel")
    factor = None
    if before is not None and after is not None and len(before) == 4:
        fh, fw = after[2] / before[2], after[3] / before[3]
        if fh == fw and fh == int(fh) and after[:2] == before[:2]:
            factor = int(fh)
    ok_mode = (mode == "nearest" and how == "asymmetric"
               and a.get("nearest_mode", "round_prefer_floor") == "floor") or (
        mode == "linear" and how in ("half_pixel", "pytorch_half_pixel"))
    if factor is None or not ok_mode:
        ctx.refuse(node, f"Resize ({mode}, {how}) by a factor other than one whole number on "
                         f"H and W; Upsample repeats pixels (nearest) or blends them "
                         f"(bilinear, align_corners false) by an integer factor")
        return
    ctx.add(node, "Upsample", {"scale_factor": factor,
                               "mode": "nearest" if mode == "nearest" else "bilinear"})


def mul(ctx: Context, node: Any) -> None:
    """``x · sigmoid(x)`` is SiLU and ``x · hardsigmoid(x)`` HardSwish, as exporters
    decompose them; any other product has no block."""
    x, y = node.input[0], node.input[1]
    for data, gate in ((x, y), (y, x)):
        p = ctx.producer(gate)
        if p is None or not p.input or p.input[0] != data:
            continue
        if p.op_type == "Sigmoid":
            ctx.add(node, "Activation", {"function": "silu"}, inputs=[data])
            return
        a = attrs(p)
        if p.op_type == "HardSigmoid" and abs(a.get("alpha", 0.2) - 1 / 6) < 1e-6 \
                and a.get("beta", 0.5) == 0.5:
            ctx.add(node, "Activation", {"function": "hardswish"}, inputs=[data])
            return
    ctx.refuse(node, "an element-wise product has no block (only x·sigmoid(x), SiLU)")


def _gate(ctx: Context, node: Any) -> None:
    """A Sigmoid or HardSigmoid: its own block, unless it only gates a Mul (see mul)."""
    out = node.output[0]
    users = [n for n in ctx.model.graph.node if out in n.input]
    if users and all(u.op_type == "Mul" and node.input[0] in u.input for u in users):
        return  # folded into the Mul's SiLU / HardSwish
    if node.op_type == "Sigmoid":
        ctx.add(node, "Activation", {"function": "sigmoid"})
    else:
        ctx.refuse(node, "HardSigmoid has no block (only as part of HardSwish)")


CONVERTERS: dict[str, Callable[[Context, Any], None]] = {
    "Conv": conv, "ConvTranspose": conv_transpose, "Gemm": gemm, "MatMul": matmul,
    "Add": add, "Sum": add, "BatchNormalization": batchnorm,
    "Relu": _activation("relu"), "Clip": clip, "LeakyRelu": leaky_relu,
    "Sigmoid": _gate, "HardSigmoid": _gate, "Tanh": _activation("tanh"),
    "HardSwish": _activation("hardswish"), "Gelu": gelu, "Elu": elu, "Softmax": softmax,
    "MaxPool": _pool("MaxPool2d"), "AveragePool": _pool("AvgPool2d"),
    "GlobalAveragePool": global_average_pool, "ReduceMean": reduce_mean, "Flatten": flatten,
    "Reshape": reshape, "Concat": concat, "Resize": resize, "Mul": mul,
}
