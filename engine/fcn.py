"""Fully convolutional designs (SPEC §7): which block ties a design to one input size,
and "make fully convolutional", the course notes' conversion of a classifier's dense
head into convolutions.

Why a conversion and not just advice: the notes' claim is that a ``Flatten → Linear``
head *is* a convolution whose kernel covers the whole feature map, so the converted
network has exactly the same parameters, gives exactly the same answer at the size it
was trained at, and now also runs on larger images, where it gives a heat map (one
answer per window). Doing it on the graph, weights included, lets the summary show
that claim instead of asserting it.

The converted head: the first ``Linear`` after the ``Flatten`` becomes a ``Conv2d``
with ``kernel_size`` = the feature map's H×W and padding ``"valid"`` (its weight
``[out, C·H·W]`` reshaped to ``[out, C, H, W]``, which is torch's flatten order), every
following ``Linear`` a 1×1 ``Conv2d``; activations and dropout between them stay, and
a ``BatchNorm`` on the head's vectors becomes a BatchNorm2d with the same state. There
is no ``Flatten`` at the end: the ``Output`` receives ``[K,1,1]`` at the original size
and a ``[K,h,w]`` heat map at larger sizes (squeeze the two 1s to compare with the
classifier). Plain Python over the graph; torch is imported only to reshape weights.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .analysis import Report, analyze
from .errors import GraphError
from .graph import Graph
from .spec import Shape

# Blocks that act on each element alone: on the map they compute what they computed on
# its flattened vector.
_ELEMENTWISE = {"Dropout", "Activation"}
FIX = ("make the design fully convolutional (the Flatten → Linear head becomes a Conv2d "
       "whose kernel is the feature map's size, later Linears 1×1 Conv2d), or export "
       "without --dynamic-size")


class FcnError(ValueError):
    """The design's head cannot become convolutions; the message names the block."""


@dataclass(frozen=True)
class FullyConvolutional:
    """What :func:`make_fully_convolutional` made: the new graph, its weights (None when
    none were given) and one line per change, naming the nodes."""

    graph: Graph
    state_dict: dict[str, Any] | None
    changes: tuple[str, ...]
    converted: tuple[str, ...]   # Linear ids that are now Conv2d (same ids)
    removed: tuple[str, ...]     # Flatten (and identity pooling) ids taken out

    def describe(self) -> str:
        return "; ".join(self.changes)


# ---- which block fixes the size -------------------------------------------------------


def _analysed(graph: Graph) -> Report:
    report = analyze(graph)
    if report.errors:
        raise GraphError(report.errors)
    return report


def _used(graph: Graph, report: Report) -> list[str]:
    """The nodes that lead to the Output, in dependency order."""
    import networkx as nx

    used = nx.ancestors(graph.nx, report.output_id) | {report.output_id}
    return [n for n in graph.topo_order() or [] if n in used]


def total_stride(report: Report, nodes: list[str] | None = None) -> int:
    """The largest step, in input pixels, of any block's output: sizes that differ by a
    multiple of it pool and upsample exactly as the design's own size does."""
    jumps = [report.nodes[n].jump for n in (nodes or report.nodes)]
    return max([1, *(math.ceil(j) for j in jumps if j)])


def larger_sizes(graph: Graph, report: Report | None = None) -> dict[str, tuple[int, int]]:
    """A larger, non-square ``(H, W)`` for every Input: 4 and 2 total strides more, so
    e.g. a U-Net at 64×64 that pools three times is checked at 96×80."""
    report = report or _analysed(graph)
    step = total_stride(report, _used(graph, report))
    sizes = {}
    for n in report.input_ids:
        _, h, w = report.nodes[n].output_shape
        sizes[n] = (h + 4 * step, w + 2 * step)
    return sizes


def fully_convolutional_blocker(graph: Graph) -> tuple[str, str] | None:
    """``(node id, reason)`` for the first block (in dependency order) that ties the
    design to its input size, or None when it runs on any size (SPEC §7).

    Decided by what the blocks do more than by their names: the design is analysed
    again at a larger size (:func:`larger_sizes`), and a block fixes the size when it
    fails there, when its weights would have to change (a ``Linear`` after a
    ``Flatten``), or when it makes a vector whose length follows the input size (a
    ``Flatten`` of a feature map). An ``AdaptiveAvgPool2d`` to more than 1×1 fixes the
    map's size whatever the input (and the ONNX exporter bakes its window in). So a
    ``GlobalAvgPool`` classifier, which gives one answer per image at any size, is not
    refused, while ``Flatten`` of a map is. Raises :class:`GraphError` for an invalid
    graph.
    """
    report = _analysed(graph)
    sizes = larger_sizes(graph, report)
    (first_in, (h2, w2)) = next(iter(sizes.items()))
    _, h, w = report.nodes[first_in].output_shape
    resized = graph.copy()
    for n, (height, width) in sizes.items():
        resized.set_param(n, "height", height)
        resized.set_param(n, "width", width)
    big = analyze(resized)
    here, there = f"{h}×{w}", f"{h2}×{w2}"
    for n in _used(graph, report):
        old, new = report.nodes[n], big.nodes[n]
        kind = f"{n} ({old.type})"
        if old.type == "AdaptiveAvgPool2d" and tuple(old.output_shape[1:]) != (1, 1):
            oh, ow = old.output_shape[1:]
            return n, (f"{kind} pools any map to a fixed {oh}×{ow}, so the design no longer "
                       f"follows the input size (and ONNX bakes the window for {here} into "
                       f"the file); remove it where its input already is {oh}×{ow}, use "
                       f"GlobalAvgPool, or export without --dynamic-size")
        if new.error is not None:
            return n, (f"{kind} does not work at {there}: {new.error.message}; "
                       f"it works at {here} only")
        if old.params != new.params:
            return n, (f"{kind} has weights sized for {here} inputs ({old.params:,} "
                       f"parameters; at {there} it would need {new.params:,}); {FIX}")
        if len(old.output_shape) == 1 and old.output_shape != new.output_shape:
            what = (f"unrolls the {_fmt(report.nodes[graph.inputs_of(n)[0][1]].output_shape)}"
                    f" map into {old.output_shape[0]:,} features"
                    if old.type == "Flatten" else
                    f"gives a vector of {old.output_shape[0]:,} features")
            return n, (f"{kind} fixes the input size: it {what}, a number that follows the "
                       f"input size ({new.output_shape[0]:,} at {there}), so the blocks after "
                       f"it fit {here} only; {FIX}")
    return None


def _fmt(shape: Shape | None) -> str:
    return "[" + ",".join(str(d) for d in shape or ()) + "]"


# ---- the conversion -------------------------------------------------------------------


def make_fully_convolutional(graph: Graph, state_dict: Mapping[str, Any] | None = None
                             ) -> FullyConvolutional:
    """Replace every ``Flatten → Linear`` head by the equivalent convolutions (see the
    module's docstring), carrying ``state_dict`` (the compiled module's) over.

    The graph itself is not changed. Raises :class:`FcnError` naming the block when the
    head holds something that has no convolutional equivalent (a ``BatchNorm`` or
    ``softmax`` on the flattened map, a join with a vector from elsewhere, a plug-in)
    or when there is nothing to convert, and :class:`GraphError` for an invalid graph.
    """
    report = _analysed(graph)
    shapes = {n: info.output_shape for n, info in report.nodes.items()}
    order = graph.topo_order() or []
    heads = [n for n in order if graph.type_of(n) == "Flatten"
             and len(shapes[graph.inputs_of(n)[0][1]]) == 3]
    if not heads:
        blocker = fully_convolutional_blocker(graph)
        why = ("it already runs on any input size" if blocker is None
               else f"{blocker[0]} fixes its size, which only a Flatten → Linear head can undo")
        raise FcnError(f"nothing to convert: the design has no Flatten of a feature map "
                       f"followed by Linear blocks; {why}")
    region = set(heads)
    for n in order:
        if any(src in region for _, src in graph.inputs_of(n)):
            region.add(n)
    new_shape: dict[str, Shape] = {}
    plan: dict[str, dict[str, Any]] = {}   # Linear id → Conv2d params
    kernels: dict[str, tuple[int, int, int]] = {}  # Linear id → (C, h, w) of its input
    removed: list[str] = []
    changes: list[str] = []
    for n in order:
        if n not in region:
            continue
        t = graph.type_of(n)
        ins = [src for _, src in graph.inputs_of(n)]
        outside = [s for s in ins if s not in region and len(shapes[s]) == 1]
        if outside and t != "Flatten":
            raise FcnError(f"{n} ({t}) joins the head with {outside[0]}, whose vector "
                           f"{_fmt(shapes[outside[0]])} has no map to become: only a head "
                           f"fed by the Flatten alone can become convolutions")
        got = [new_shape.get(s, shapes[s]) for s in ins]
        spatial = [g[1:] for g in got if len(g) == 3]
        if t == "Flatten":
            new_shape[n] = got[0]
            removed.append(n)
            if len(got[0]) == 3 and got[0][1:] != (1, 1):
                changes.append(f"{n} (Flatten) removed: the head now reads the "
                               f"{_fmt(got[0])} map itself")
            else:
                changes.append(f"{n} (Flatten) removed")
        elif t == "Linear":
            c, h, w = got[0]
            p = _resolved(report, n)
            plan[n] = {"out_channels": p["out_features"],
                       "kernel_size": h if h == w else [h, w],
                       "padding": "valid", "bias": p["bias"]}
            kernels[n] = (c, h, w)
            new_shape[n] = (p["out_features"], 1, 1)
            size = "1×1 Conv2d" if (h, w) == (1, 1) else f"Conv2d with a {h}×{w} kernel"
            changes.append(f"{n}: Linear {c * h * w:,}→{p['out_features']:,} became a {size}, "
                           f"padding valid ({report.nodes[n].params:,} parameters, as before)")
        elif t in _ELEMENTWISE or t in ("BatchNorm", "Add", "Concat"):
            if t in ("BatchNorm", "Concat") or _resolved(report, n).get("function") == "softmax":
                if any(s != (1, 1) for s in spatial):
                    raise FcnError(f"{n} ({t}) acts on the flattened map as one vector, "
                                   f"which no convolution reproduces: move it after the "
                                   f"first Linear, or remove it, then convert")
            if t == "Add" and len(set(got)) > 1:
                raise FcnError(f"{n} (Add) adds {' and '.join(_fmt(g) for g in got)}, "
                               f"which differ once the head is convolutional")
            new_shape[n] = ((sum(g[0] for g in got), 1, 1) if t == "Concat" else got[0])
            if t == "BatchNorm":
                changes.append(f"{n}: BatchNorm1d became BatchNorm2d (same statistics)")
        elif t == "Output":
            new_shape[n] = got[0]
        else:
            raise FcnError(f"{n} ({t}) sits in the Flatten → Linear head and has no "
                           f"convolutional equivalent: remove it, then convert")
    pools = _identity_pools(graph, report, heads)
    removed[:0] = [n for n, _ in pools]
    changes[:0] = [c for _, c in pools]
    out = report.output_id
    (ih, iw) = next(iter(larger_sizes(graph, report).values()))
    changes.append(f"{out} now receives {_fmt(new_shape.get(out, shapes[out]))} at the "
                   f"original size and a heat map at larger inputs (e.g. {ih}×{iw}); "
                   f"{report.total_params:,} parameters, as before")
    new_graph = _rebuilt(graph, plan, removed)
    state = None if state_dict is None else _carried(report, new_graph, state_dict, kernels)
    return FullyConvolutional(new_graph, state, tuple(changes), tuple(plan), tuple(removed))


def _resolved(report: Report, n: str) -> Mapping[str, Any]:
    return report.nodes[n].resolved or {}


def _identity_pools(graph: Graph, report: Report, heads: list[str]) -> list[tuple[str, str]]:
    """``AdaptiveAvgPool2d`` blocks that only feed a head's Flatten and do nothing at the
    design's size (input already ``output_size``, as VGG's 7×7 at 224×224): they would
    pin the map to that size, so they go too."""
    found = []
    for f in heads:
        src = graph.inputs_of(f)[0][1]
        if graph.type_of(src) != "AdaptiveAvgPool2d" or set(graph.consumers_of(src)) - set(heads):
            continue
        (before,) = [s for _, s in graph.inputs_of(src)]
        if report.nodes[before].output_shape == report.nodes[src].output_shape:
            found.append((src, f"{src} (AdaptiveAvgPool2d) removed: at the design's size "
                               f"its input is already {_fmt(report.nodes[src].output_shape)}"))
    return found


def _rebuilt(graph: Graph, plan: Mapping[str, dict[str, Any]], removed: list[str]) -> Graph:
    """The graph with planned Linears turned into Conv2d (same id, position and order)
    and ``removed`` nodes bypassed: each consumer gets the removed node's source."""
    data = graph.to_dict()
    source = {}
    for e in data["edges"]:
        if e["to"] in removed:
            source[e["to"]] = e["from"]

    def through(n: str) -> str:
        while n in removed:
            n = source[n]
        return n

    nodes = []
    for node in data["nodes"]:
        if node["id"] in removed:
            continue
        if node["id"] in plan:
            node = {**node, "type": "Conv2d", "params": dict(plan[node["id"]])}
        nodes.append(node)
    edges = []
    for e in data["edges"]:
        if e["to"] in removed:
            continue
        edges.append({**e, "from": through(e["from"])})
    data["nodes"], data["edges"] = nodes, edges
    return Graph.from_dict(data)


def _carried(report: Report, new_graph: Graph, state_dict: Mapping[str, Any],
             kernels: Mapping[str, tuple[int, int, int]]) -> dict[str, Any]:
    """``state_dict`` renamed to the new module's names, each converted Linear's weight
    reshaped to its convolution's ``[out, C, h, w]`` (torch flattens C, then H, then W)."""
    import torch

    from .checkpoint import weights_mismatch
    from .compile import compile_graph, module_names

    old_names = module_names(report.nodes)
    new_report = analyze(new_graph)
    new_names = module_names(new_report.nodes)
    node_of = {name: n for n, name in old_names.items()}
    out: dict[str, Any] = {}
    for key, value in state_dict.items():
        prefix, _, rest = key.partition(".")
        n = node_of.get(prefix)
        if n is None or n not in new_names:
            raise FcnError(f"the weights hold {key!r}, which belongs to no block of this "
                           f"design: are they another design's?")
        if n in kernels and rest == "weight":
            c, h, w = kernels[n]
            value = value.reshape(value.shape[0], c, h, w)
        out[f"{new_names[n]}.{rest}"] = value
    with torch.device("meta"):
        model = compile_graph(new_graph, new_report)
    problem = weights_mismatch(model, out)
    if problem:
        raise FcnError(f"the weights do not fit the design (were they trained on another "
                       f"version of it?): {problem}")
    return out
