"""Primitive blocks that form a ResNet block become one ResidualBlock (ONNX import).

An exported ResNet arrives as convolutions, BatchNorms, ReLUs and Adds. Where they
form exactly what the ResidualBlock computes (torchvision's ``BasicBlock`` or
``Bottleneck``: conv-BN-ReLU-conv-BN (-ReLU-conv-BN), plus the input or a 1×1
conv-BN projection, added, then ReLU), with the same kernel sizes, strides, padding
and BatchNorm settings, the group is replaced by one ResidualBlock holding the same
weights under the block's own names. Anything else stays primitive: the design must
compute what the model computed.

A Conv with a bias and no BatchNorm after it (the legacy exporter folds BatchNorm
into the Conv) counts as conv-BN: the BN gets the Conv's bias as its shift and
identity statistics (mean 0, variance 1 − eps), which computes the same.
"""

from __future__ import annotations

import numpy as np

from .builder import DesignBuilder, identity_batchnorm, pair

EPS, MOMENTUM = 1e-5, 0.1


class _NoMatch(Exception):
    pass


def group_residuals(b: DesignBuilder) -> int:
    """Replace every matching group in ``b``'s graph; returns how many were replaced."""
    g = b.graph
    count = 0
    for n in list(g.nodes):
        if n not in g or g.type_of(n) != "Add" or len(g.inputs_of(n)) != 2:
            continue
        try:
            found = _match(b, n)
        except _NoMatch:
            continue
        _replace(b, *found)
        count += 1
    if count:
        b.notes.append(f"{count} groups of layers recognised as ResidualBlocks (the same "
                       f"computation as torchvision's BasicBlock/Bottleneck)")
    return count


def _one(b: DesignBuilder, n: str, type_name: str) -> str:
    """The single input of ``n``, which must be a ``type_name`` block used only by ``n``."""
    g = b.graph
    ins = g.inputs_of(n)
    if len(ins) != 1:
        raise _NoMatch
    src = ins[0][1]
    if g.type_of(src) != type_name:
        raise _NoMatch
    _only_feeds(b, src, n)
    return src


def _only_feeds(b: DesignBuilder, n: str, consumer: str) -> None:
    g = b.graph
    if g.consumers_of(n) != [consumer] or len(g.nx.out_edges(n)) != 1:
        raise _NoMatch


def _relu_input(b: DesignBuilder, n: str) -> str:
    src = _one(b, n, "Activation")
    if b.graph.params_of(src).get("function", "relu") != "relu":
        raise _NoMatch
    return src


def _conv_bn(b: DesignBuilder, end: str, kernel: int, stride: int | None
             ) -> tuple[str, str | None, int]:
    """``end`` is a BN after a bias-free Conv, or a Conv with a (folded) bias: returns
    ``(conv, bn or None, stride)`` after checking the conv's settings."""
    g = b.graph
    if g.type_of(end) == "BatchNorm":
        p = g.params_of(end)
        if p.get("eps", EPS) != EPS or p.get("momentum", MOMENTUM) != MOMENTUM or \
                p.get("affine", True) is not True:
            raise _NoMatch
        conv = _one(b, end, "Conv2d")
        bn: str | None = end
        if g.params_of(conv).get("bias", True):
            raise _NoMatch
    elif g.type_of(end) == "Conv2d" and g.params_of(end).get("bias", True):
        conv, bn = end, None
    else:
        raise _NoMatch
    p = g.params_of(conv)
    s = pair(p.get("stride", 1))
    padding = p.get("padding", "same")
    if padding != "same" and pair(padding) != kernel // 2:
        raise _NoMatch
    if pair(p.get("kernel_size", 3)) != kernel or p.get("groups", 1) != 1 or \
            pair(p.get("dilation", 1)) != 1 or not isinstance(s, int) or \
            (stride is not None and s != stride):
        raise _NoMatch
    return conv, bn, s


def _match(b: DesignBuilder, add: str):
    g = b.graph
    consumers = g.consumers_of(add)
    if len(consumers) != 1 or len(g.nx.out_edges(add)) != 1:
        raise _NoMatch
    relu_out = consumers[0]
    if g.type_of(relu_out) != "Activation" or \
            g.params_of(relu_out).get("function", "relu") != "relu":
        raise _NoMatch
    (_, a), (_, c) = g.inputs_of(add)
    for main_end, short in ((a, c), (c, a)):
        try:
            layers, relus, x, stride = _main_branch(b, main_end, add)
            projection = _shortcut(b, short, x, stride, add)
        except _NoMatch:
            continue
        c_in = b.weights[layers[0][0]]["weight"].shape[1]
        c_out = b.weights[layers[-1][0]]["weight"].shape[0]
        if (projection is not None) != (stride != 1 or c_in != c_out):
            continue  # the block projects exactly when the shape changes
        return add, relu_out, layers, relus, projection, x, stride
    raise _NoMatch


def _main_branch(b: DesignBuilder, end: str, add: str):
    """The conv(-BN)s of a basic (two 3×3) or bottleneck (1×1, 3×3, 1×1) main branch,
    first to last, the ReLUs between them, the block's input and its stride."""
    g = b.graph
    _only_feeds(b, end, add)
    last = _conv_bn(b, end, _kernel(g, end), 1)
    relus = [_relu_input(b, last[0])]
    before = g.inputs_of(relus[0])[0][1]
    _only_feeds(b, before, relus[0])
    if pair(g.params_of(last[0]).get("kernel_size", 3)) == 3:
        layers = [_conv_bn(b, before, 3, None), last]  # conv3×3(s)-bn-relu-conv3×3-bn
    else:  # bottleneck: 1×1 - 3×3(s) - 1×1
        mid = _conv_bn(b, before, 3, None)
        relus.append(_relu_input(b, mid[0]))
        first_end = g.inputs_of(relus[1])[0][1]
        _only_feeds(b, first_end, relus[1])
        layers = [_conv_bn(b, first_end, 1, 1), mid, last]
        width = int(b.weights[layers[0][0]]["weight"].shape[0])
        out = int(b.weights[last[0]]["weight"].shape[0])
        if out % 4 or out // 4 != width:
            raise _NoMatch
    x = g.inputs_of(layers[0][0])[0][1]
    stride = layers[1][2] if len(layers) == 3 else layers[0][2]
    return layers, relus, x, stride


def _kernel(g, end: str):
    node = end if g.type_of(end) == "Conv2d" else (g.inputs_of(end) or [(0, end)])[0][1]
    if g.type_of(node) != "Conv2d":
        raise _NoMatch
    return pair(g.params_of(node).get("kernel_size", 3))


def _shortcut(b: DesignBuilder, short: str, x: str, stride: int, add: str):
    if short == x:
        return None
    _only_feeds(b, short, add)
    conv, bn, s = _conv_bn(b, short, 1, stride)
    if b.graph.inputs_of(conv)[0][1] != x:
        raise _NoMatch
    return conv, bn, s


def _bn_weights(b: DesignBuilder, conv: str, bn: str | None) -> dict[str, np.ndarray]:
    if bn is not None:
        return b.weights[bn]
    return identity_batchnorm(b.weights[conv]["bias"], EPS)


def _replace(b: DesignBuilder, add: str, relu_out: str, layers, relus, projection, x: str,
             stride: int) -> None:
    g = b.graph
    members = [relu_out, add, *relus]
    weights: dict[str, np.ndarray] = {}
    for i, (conv, bn, _) in enumerate(layers, 1):
        weights[f"conv{i}.weight"] = b.weights[conv]["weight"]
        weights.update({f"bn{i}.{k}": v for k, v in _bn_weights(b, conv, bn).items()})
        members += [conv] + ([bn] if bn else [])
    if projection is not None:
        conv, bn, _ = projection
        weights["downsample.0.weight"] = b.weights[conv]["weight"]
        weights.update({f"downsample.1.{k}": v for k, v in _bn_weights(b, conv, bn).items()})
        members += [conv] + ([bn] if bn else [])
    params: dict = {"out_channels": int(weights[f"conv{len(layers)}.weight"].shape[0])}
    if stride != 1:
        params["stride"] = stride
    if len(layers) == 3:
        params["bottleneck"] = True
    outs = [(v, k) for _, v, k in g.nx.out_edges(relu_out, keys=True)]
    for m in members:
        g.remove_node(m)
        b.weights.pop(m, None)
    scope = _common_scope([b.paths.get(c, "") for c, _, _ in layers])
    n = b.add(scope, "ResidualBlock", params, [x], weights)
    for v, k in outs:
        g.add_edge(n, v, k)


def _common_scope(paths: list[str]) -> str | None:
    """``layer1.0.conv1`` and ``layer1.0.conv2`` → ``layer1.0``, the block's module."""
    parts = [p.split(".") for p in paths]
    common = []
    for words in zip(*parts, strict=False):
        if len(set(words)) != 1:
            break
        common.append(words[0])
    return ".".join(common) or None
