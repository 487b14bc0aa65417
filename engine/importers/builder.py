"""Building a Convas design from another format's graph, shared by both importers.

The ONNX and the torch.fx readers both walk a dataflow graph and say, per operator,
"this is a Conv2d with these params and these weights, fed by those values". This
module turns that into a :class:`~engine.graph.Graph` with ids from the model's own
names, a ``state_dict`` keyed as :func:`engine.compile_graph` names its parameters,
and notes about what was folded or dropped. It imports no torch until the very end
(the tensors of the state_dict), so the graph building itself stays plain Python.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..analysis import analyze
from ..blocks import CATALOGUE
from ..graph import ID_PATTERN, Graph


class ImportModelError(Exception):
    """A model that cannot be imported; the message says why and what to do."""


class NeedsInputShape(ImportModelError):
    """The model does not fix its input size: import it again with ``input_shape``
    (the application asks for C,H,W; the command line says to pass --input-shape)."""


@dataclass
class UnsupportedModel(ImportModelError):
    """Operators (or uses of them) the block catalogue cannot express.

    ``operators`` lists ``(op_type, count, example node name)`` for operator types with
    no block at all; ``reasons`` one sentence per node whose operator is known but used
    in a way no block reproduces (asymmetric padding, a Clip other than 0–6, ...).
    """

    operators: list[tuple[str, int, str]] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        super().__init__(self.describe())

    def describe(self) -> str:
        lines = []
        if self.operators:
            lines.append("the model uses operators Convas has no block for:")
            lines += [f"  {op} × {count} (e.g. node {name!r})"
                      for op, count, name in self.operators]
        if self.reasons:
            lines.append("the model uses operators in a way no Convas block reproduces:")
            lines += [f"  {reason}" for reason in self.reasons]
        lines.append("nothing was written; replace these layers in the model, or build the "
                     "design by hand")
        return "\n".join(lines)


@dataclass
class Imported:
    """An imported design: the laid-out graph, its weights and what the import did.

    ``state_dict`` loads with ``strict=True`` into ``engine.compile_graph(graph)``;
    ``notes`` says what was folded, dropped or copied, one sentence each.
    """

    graph: Graph
    state_dict: dict[str, Any]
    notes: list[str]
    source: str
    dropped: Counter = field(default_factory=Counter)

    def summary(self) -> str:
        """One line for the command line: blocks, parameters and what was dropped."""
        params = sum(int(np.prod(v.shape)) for k, v in self.state_dict.items()
                     if not k.endswith(("running_mean", "running_var", "num_batches_tracked")))
        blocks = Counter(self.graph.type_of(n) for n in self.graph.nodes)
        kinds = ", ".join(f"{c} {t}" for t, c in blocks.most_common())
        dropped = ", ".join(f"{c} {op}" for op, c in sorted(self.dropped.items()))
        return (f"imported {self.source}: {len(self.graph)} blocks ({kinds}), "
                f"{params:,} parameters; dropped: {dropped or 'nothing'}")


def pair(value: Any) -> int | list[int]:
    """An ``int2`` parameter as the file writes it: one int when both sides agree."""
    if isinstance(value, int | np.integer):
        return int(value)
    a, b = (int(v) for v in value)
    return a if a == b else [a, b]


def identity_batchnorm(shift: np.ndarray, eps: float = 1e-5) -> dict[str, np.ndarray]:
    """A BatchNorm's weights that compute ``x + shift`` at inference (scale 1, mean 0,
    variance 1 − eps): how a BatchNorm an exporter folded into a Conv's bias comes back."""
    n = shift.shape[0]
    return {"weight": np.ones(n, np.float32), "bias": shift,
            "running_mean": np.zeros(n, np.float32),
            "running_var": np.full(n, 1.0 - eps, np.float32),
            "num_batches_tracked": np.array(0, np.int64)}


class DesignBuilder:
    """Collects blocks, wires and weights; :meth:`finish` checks and lays them out."""

    def __init__(self, name: str, source: str) -> None:
        self.graph = Graph(name)
        self.source = source
        self.weights: dict[str, dict[str, np.ndarray]] = {}
        self.notes: list[str] = []
        self.dropped: Counter = Counter()
        self.reasons: list[str] = []
        self.paths: dict[str, str] = {}  # node id → the model's module path it came from

    # ---- ids -------------------------------------------------------------------------

    def node_id(self, path: str | None, type_name: str, params: Mapping[str, Any]) -> str:
        """An id from the model's own module path (``layer1.0.conv1`` → ``layer1_0_conv1``),
        numbered when that is taken; the block's id prefix when there is no usable path."""
        prefix = CATALOGUE[type_name].prefix(dict(params))
        base = re.sub(r"\W", "_", path or "").strip("_")
        if base and base[0].isdigit():
            base = prefix + base  # nn.Sequential children: "0" → conv0
        if not base or not ID_PATTERN.match(base):
            return self.graph.new_id(prefix)
        if base not in self.graph:
            return base
        i = 1
        while f"{base}_{i}" in self.graph:
            i += 1
        return f"{base}_{i}"

    # ---- blocks ----------------------------------------------------------------------

    def add(self, path: str | None, type_name: str, params: dict[str, Any],
            inputs: list[str], weights: Mapping[str, np.ndarray] | None = None) -> str:
        """Add a block fed by the nodes ``inputs`` (in port order); returns its id."""
        n = self.node_id(path, type_name, params)
        self.graph.add_node(n, type_name, params)
        if path:
            self.paths[n] = path
        for port, src in enumerate(inputs):
            self.graph.add_edge(src, n, port)
        if weights:
            self.weights[n] = {k: np.asarray(v) for k, v in weights.items()}
        return n

    def refuse(self, reason: str) -> None:
        """A node no block can reproduce; every one is reported together at the end."""
        self.reasons.append(reason)

    def drop(self, what: str) -> None:
        self.dropped[what] += 1

    # ---- the end ---------------------------------------------------------------------

    def finish(self) -> Imported:
        """Check the design computes (every block's shape rule passes), lay it out and
        key the weights as the compiled module names them."""
        from ..layout import layered_layout

        if self.reasons:
            raise UnsupportedModel(reasons=self.reasons)
        report = analyze(self.graph)
        if report.errors:
            listed = "; ".join(str(e) for e in report.errors[:5])
            raise ImportModelError(
                f"the imported design does not check ({listed}); this model uses a layer "
                f"combination the importer does not map yet: build it by hand")
        for n, pos in layered_layout(self.graph).items():
            self.graph.set_pos(n, pos)
        state = _state_dict(self.graph, self.weights)
        return Imported(self.graph, state, self.notes, self.source, self.dropped)


def _state_dict(graph: Graph, weights: dict[str, dict[str, np.ndarray]]) -> dict[str, Any]:
    """Tensors keyed ``<module name>.<param>``, checked against the compiled module's own
    keys and shapes (built on the meta device: no memory, no initialisation)."""
    import torch

    from ..checkpoint import weights_mismatch
    from ..compile import compile_graph, module_names

    names = module_names(graph.nodes)
    state: dict[str, torch.Tensor] = {}
    for n, tensors in weights.items():
        for key, value in tensors.items():
            tensor = torch.from_numpy(np.array(value, copy=True, order="C"))
            if key.endswith("num_batches_tracked"):
                tensor = tensor.to(torch.long)
            elif tensor.is_floating_point():
                tensor = tensor.to(torch.float32)
            state[f"{names[n]}.{key}"] = tensor
    with torch.device("meta"):
        model = compile_graph(graph)
    problem = weights_mismatch(model, state)
    if problem:  # a bug in a mapping, never the user's fault
        raise ImportModelError(f"internal error: the imported weights do not fit the design "
                               f"({problem}); please report this with the model")
    return state
