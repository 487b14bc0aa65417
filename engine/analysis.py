"""Static analysis of a graph (SPEC §3): shapes, counts, receptive fields, errors.

One walk in topological order asks each block's spec for its output shape and counts.
A node whose own parameters or inputs are wrong gets an error that says what to do;
nodes downstream of it simply have no shape, so one mistake is reported once, and the
rest of the graph is still analysed. Results are memoised per node on the graph and
reused while the node's parameters and its inputs' results are unchanged, which keeps
re-analysis after a single edit in the millisecond range for a thousand blocks.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import networkx as nx

from .blocks import CATALOGUE
from .errors import BlockError, NodeError
from .graph import Graph
from .spec import BlockSpec, Shape
from .units import human_bytes

_STRUCTURE_KEY = ("structure",)  # a tuple never collides with a node id


@dataclass(frozen=True, slots=True)
class NodeInfo:
    """What the analysis knows about one node. ``output_shape`` is None when unknown."""

    id: str
    type: str
    output_shape: Shape | None = None
    params: int = 0
    macs: int = 0
    activations: int = 0
    saved_activations: int = 0
    receptive_field: float | None = None
    jump: float | None = None
    error: NodeError | None = None
    resolved: Mapping[str, Any] | None = None
    rf_state: tuple[float, float] | None = None  # carried through non-spatial nodes too
    # An instance of a block made of blocks (SPEC §9): its body's nodes, by inner id.
    inner: Mapping[str, NodeInfo] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "type": self.type,
            "output_shape": list(self.output_shape) if self.output_shape is not None else None,
            "params": self.params,
            "macs": self.macs,
            "activations": self.activations,
            "receptive_field": _plain(self.receptive_field),
            "jump": _plain(self.jump),
            "error": self.error.message if self.error else None,
        }


def _plain(x: float | None) -> float | int | None:
    if x is None:
        return None
    return int(x) if float(x).is_integer() else round(x, 4)


PRECISIONS = {"fp32": 4, "bf16": 2, "fp16": 2}
OPTIMIZER_STATES = {"sgd": 1, "adam": 2, "adamw": 2}  # fp32 tensors per parameter


@dataclass(frozen=True)
class MemoryEstimate:
    """Bytes a training step needs on the device, by what holds them.

    Weights, gradients and optimizer state stay fp32 under mixed precision; saved
    activations (what backward needs) shrink to 2 bytes. Framework workspace and the
    CUDA context (a few hundred MiB) come on top and are not counted.
    """

    batch_size: int
    precision: str
    optimizer: str
    weights: int
    gradients: int
    optimizer_state: int
    activations: int
    inputs: int

    @property
    def total(self) -> int:
        return self.weights + self.gradients + self.optimizer_state + self.activations \
            + self.inputs

    def describe(self) -> str:
        return (f"≈ {human_bytes(self.total)} to train at batch {self.batch_size}, "
                f"{self.precision}, {self.optimizer} (weights {human_bytes(self.weights)}, "
                f"gradients {human_bytes(self.gradients)}, optimizer "
                f"{human_bytes(self.optimizer_state)}, activations "
                f"{human_bytes(self.activations)})")

    def to_dict(self) -> dict[str, Any]:
        return {"batch_size": self.batch_size, "precision": self.precision,
                "optimizer": self.optimizer, "weights": self.weights,
                "gradients": self.gradients, "optimizer_state": self.optimizer_state,
                "activations": self.activations, "inputs": self.inputs, "total": self.total}


@dataclass
class Report:
    """The analysis of a whole graph: per-node information, totals and errors."""

    name: str
    nodes: dict[str, NodeInfo]
    errors: list[NodeError]
    warnings: list[NodeError] = field(default_factory=list)
    input_ids: list[str] = field(default_factory=list)
    output_id: str | None = None
    # Activations that overwrite their input (see runs_inplace): no memory of their own.
    inplace: frozenset[str] = frozenset()
    # Nodes marked frozen (SPEC §8): their parameters exist but are not trained.
    frozen: frozenset[str] = frozenset()

    @property
    def ok(self) -> bool:
        return not self.errors

    @property
    def total_params(self) -> int:
        return sum(i.params for i in self.nodes.values())

    @property
    def trainable_params(self) -> int:
        """Parameters training changes: all but those of frozen nodes."""
        nodes = self.nodes
        return self.total_params - sum(nodes[n].params for n in self.frozen if n in nodes)

    def node_trainable_params(self, node_id: str) -> int:
        """One node's trainable parameters: 0 when it is frozen, else all of them."""
        return 0 if node_id in self.frozen else self.nodes[node_id].params

    @property
    def total_macs(self) -> int:
        return sum(i.macs for i in self.nodes.values())

    @property
    def total_activations(self) -> int:
        return sum(i.activations for i in self.nodes.values())

    @property
    def output_shape(self) -> Shape | None:
        return self.nodes[self.output_id].output_shape if self.output_id else None

    def memory(self, batch_size: int = 64, precision: str = "fp32", optimizer: str = "adam",
               momentum: float = 0.9) -> MemoryEstimate:
        """Estimate of training memory: "will it fit on my GPU?" before trying.

        SGD keeps a momentum buffer only when ``momentum`` is non-zero. Frozen nodes'
        weights take memory, but no gradient and no optimizer state.
        """
        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}")
        if optimizer not in OPTIMIZER_STATES:
            raise ValueError(f"optimizer must be one of {', '.join(OPTIMIZER_STATES)}")
        p, trained = self.total_params, self.trainable_params
        states = OPTIMIZER_STATES[optimizer] if optimizer != "sgd" or momentum else 0
        saved = sum(i.saved_activations for n, i in self.nodes.items() if n not in self.inplace)
        inputs = sum(math.prod(self.nodes[i].output_shape or ()) for i in self.input_ids)
        return MemoryEstimate(
            batch_size, precision, optimizer,
            weights=4 * p, gradients=4 * trained, optimizer_state=4 * trained * states,
            activations=batch_size * saved * PRECISIONS[precision],
            inputs=batch_size * inputs * 4,
        )

    def to_dict(self) -> dict[str, Any]:
        """The object ``convas summary --json`` prints (SPEC §4)."""
        return {
            "name": self.name,
            "nodes": [i.to_dict() for i in self.nodes.values()],
            "total_params": self.total_params,
            "trainable_params": self.trainable_params,
            "total_macs": self.total_macs,
            "total_activations": self.total_activations,
            "errors": [e.to_dict() for e in self.errors],
            "warnings": [e.to_dict() for e in self.warnings],
        }


# ---- parameters ------------------------------------------------------------------------


def resolve_params(spec: BlockSpec, raw: Mapping[str, Any]) -> tuple[dict[str, Any],
                                                                      list[NodeError]]:
    """Defaults filled in and every value checked; problems name the parameter."""
    resolved: dict[str, Any] = {}
    problems: list[NodeError] = []
    for name in raw:
        if name not in spec.param_index:
            known = ", ".join(spec.param_index) or "none"
            problems.append(NodeError(None, f"{spec.type} has no parameter '{name}': remove it "
                                            f"(its parameters: {known})", name))
    for ps in spec.params:
        value = raw.get(ps.name, ps.default)
        try:
            resolved[ps.name] = ps.normalize(value)
        except ValueError as exc:
            problems.append(NodeError(None, f"parameter '{ps.name}': {exc}; use "
                                            f"{ps.expected()}", ps.name))
    return resolved, problems


# ---- the walk --------------------------------------------------------------------------


def analyze(graph: Graph) -> Report:
    """Analyse every node; never raises for a wrong design, which is reported per node."""
    memo = graph.analysis_memo
    user_state = None
    if graph.blocks:  # blocks made of blocks (SPEC §9); a design without any pays nothing
        from .user_blocks import forget_instances

        user_state = forget_instances(graph)
    structure = _structure(graph, memo)
    infos: dict[str, NodeInfo] = {}
    cyclic = structure.cyclic
    inputs_of = graph.inputs_of
    node_revision = graph.node_revision
    memo_get = memo.get
    for n in structure.order:
        if cyclic and n in cyclic:
            infos[n] = NodeInfo(n, graph.type_of(n), error=NodeError(n, cyclic[n]))
            continue
        ins = inputs_of(n)
        rev = node_revision(n)
        cached = memo_get(n)
        old = cached[3] if cached is not None else None
        same = (cached is not None and cached[0] == rev
                and (cached[1] is ins or cached[1] == ins))
        if same:
            # Reuse while the params are unchanged and every input is the very same result.
            for (_, src), prev in zip(ins, cached[2], strict=True):
                if infos[src] is not prev:
                    break
            else:
                infos[n] = old
                continue
        in_infos = tuple(infos[src] for _, src in ins)
        if (same and old.error is None and old.output_shape is not None and old.inner is None
                and all(a.output_shape == b.output_shape
                        for a, b in zip(in_infos, cached[2], strict=True))):
            # Same params, wiring and input shapes: only the receptive field can differ.
            info = _with_receptive_field(old, in_infos)
        else:
            # The resolved params depend on the params alone: reuse them while unchanged.
            resolved = old.resolved if cached is not None and cached[0] == rev else None
            info = analyze_node(graph, n, ins, in_infos, resolved, state=user_state)
            if info == old:
                # Same result as before (e.g. a Conv2d whose input width changed but whose
                # output did not): keep the old object so the nodes after it stay memoised.
                info = old
        memo[n] = (rev, ins, in_infos, info)
        infos[n] = info

    errors = list(structure.graph_errors)
    errors += [i.error for i in infos.values() if i.error is not None]
    may = {t for t, s in CATALOGUE.items() if s.inplace_when is not None}  # Activation
    inplace = frozenset(n for n, i in infos.items() if i.type in may and i.error is None
                        and runs_inplace(graph, n, i))
    warnings = list(structure.warnings)
    if user_state is not None:
        from .user_blocks import body_warnings

        warnings += body_warnings(graph, infos)
    return Report(graph.name, infos, errors, warnings, structure.inputs,
                  structure.output, inplace, graph.frozen_nodes())


def runs_inplace(graph: Graph, node_id: str, info: NodeInfo) -> bool:
    """Whether a block may overwrite its input, as hand-written ResNets do with ReLU.

    It may when its spec allows it for these params (``inplace_when``), nothing else
    reads its input, and the block that made the input does not keep its output for
    backward (``backward_keeps_output``). It saves an activation-sized tensor per use.
    The compiler builds such blocks in place and the memory estimate gives them no
    memory of their own, both from this one rule.
    """
    when = CATALOGUE[info.type].inplace_when
    if when is None or not when(info.resolved):
        return False
    sources = graph.inputs_of(node_id)
    if len(sources) != 1:
        return False
    src = sources[0][1]
    return (not graph.spec(graph.type_of(src)).backward_keeps_output
            and graph.nx.out_degree(src) == 1)


@dataclass
class _Structure:
    order: list[str]
    cyclic: dict[str, str]
    graph_errors: list[NodeError]
    warnings: list[NodeError]
    inputs: list[str]
    output: str | None


def _structure(graph: Graph, memo: dict) -> _Structure:
    """Order, cycles and whole-graph checks; recomputed only when wiring changes."""
    cached = memo.get(_STRUCTURE_KEY)
    if cached is not None and cached[0] == graph.structure_revision:
        return cached[1]
    order = graph.topo_order()
    cyclic: dict[str, str] = {}
    if order is None:
        cond = nx.condensation(graph.nx)
        order = [n for c in nx.topological_sort(cond) for n in sorted(cond.nodes[c]["members"])]
        for c in cond.nodes:
            members = cond.nodes[c]["members"]
            if len(members) > 1 or graph.nx.has_edge(next(iter(members)), next(iter(members))):
                cycle = nx.find_cycle(graph.nx.subgraph(members))
                path = " → ".join([e[0] for e in cycle] + [cycle[0][0]])
                for m in members:
                    cyclic[m] = (f"part of the cycle {path}: data must flow one way; "
                                 f"remove one of these wires")
    inputs = [n for n in order if graph.type_of(n) == "Input"]
    outputs = [n for n in order if graph.type_of(n) == "Output"]
    errors: list[NodeError] = []
    warnings: list[NodeError] = []
    if not inputs:
        errors.append(NodeError(None, "the graph has no Input block: add one from the palette"))
    if not outputs:
        errors.append(NodeError(None, "the graph has no Output block: add one and connect the "
                                      "last layer to it"))
    for extra in outputs[1:]:
        errors.append(NodeError(extra, f"a graph has exactly one Output, and '{outputs[0]}' is "
                                       f"already one: delete this one or merge the results"))
    if len(outputs) == 1 and not cyclic:
        used = nx.ancestors(graph.nx, outputs[0]) | {outputs[0]}
        for n in order:
            if n not in used:
                warnings.append(NodeError(n, "not connected to the Output: its result is unused "
                                             "and it is left out of the model"))
    result = _Structure(order, cyclic, errors, warnings, inputs, outputs[0] if outputs else None)
    memo[_STRUCTURE_KEY] = (graph.structure_revision, result)
    return result


def analyze_node(graph: Graph, n: str, ins: list[tuple[int, str]],
                 in_infos: tuple[NodeInfo, ...], resolved: Mapping[str, Any] | None = None,
                 raw: Mapping[str, Any] | None = None, state: Any = None) -> NodeInfo:
    """One node from its inputs' results; ``raw`` overrides the node's own params (an
    instance's body, with its arguments filled in), ``state`` is the user blocks' one."""
    type_name = graph.type_of(n)
    spec = CATALOGUE.get(type_name)
    user = spec is None
    if user:
        spec = graph.spec(type_name)
    if resolved is None:
        resolved, problems = resolve_params(spec, graph.params_of(n) if raw is None else raw)
        if problems:
            message = "; ".join(p.message for p in problems)
            if user and not message.startswith(spec.type):
                message = f"{spec.type}: {message}"
            return NodeInfo(n, spec.type, error=NodeError(n, message, problems[0].param))
    wiring = _wiring_problem(spec, ins)
    if wiring:
        return NodeInfo(n, spec.type, error=NodeError(n, wiring), resolved=resolved)
    shapes = [i.output_shape for i in in_infos]
    if any(s is None for s in shapes):
        return NodeInfo(n, spec.type, resolved=resolved)  # waiting for an upstream fix
    if user:
        from .user_blocks import analyze_instance

        return analyze_instance(graph, n, graph.blocks[type_name], resolved, in_infos, state)
    try:
        out = spec.infer(resolved, shapes)
        params = spec.count_params(resolved, shapes)
        macs = spec.count_macs(resolved, shapes, out)
        saved = spec.saved_activations(resolved, shapes, out)
        steps = spec.rf_steps(resolved, shapes)
    except BlockError as exc:
        return NodeInfo(n, spec.type, error=NodeError(n, str(exc)), resolved=resolved)
    rf, jump = _receptive_field(in_infos, steps)
    spatial = len(out) == 3
    return NodeInfo(n, spec.type, out, params, macs, math.prod(out), saved,
                    rf if spatial else None, jump if spatial else None, None, resolved,
                    (rf, jump))


def _with_receptive_field(old: NodeInfo, in_infos: tuple[NodeInfo, ...]) -> NodeInfo:
    """``old`` with the receptive field grown from new inputs of unchanged shapes."""
    shapes = [i.output_shape for i in in_infos]
    rf, jump = _receptive_field(in_infos, CATALOGUE[old.type].rf_steps(old.resolved, shapes))
    if (rf, jump) == old.rf_state:
        return old
    spatial = len(old.output_shape) == 3
    return NodeInfo(old.id, old.type, old.output_shape, old.params, old.macs, old.activations,
                    old.saved_activations, rf if spatial else None, jump if spatial else None,
                    None, old.resolved, (rf, jump))


def _wiring_problem(spec: BlockSpec, ins: list[tuple[int, str]]) -> str | None:
    count = len(ins)
    ports = [p for p, _ in ins]
    for port in sorted(set(ports)):
        sources = [s for p, s in ins if p == port]
        if len(sources) > 1:
            return (f"{' and '.join(sources)} are both wired into input port {port}: "
                    f"remove one wire" + (", or give it another port" if spec.max_inputs is None
                                          or spec.max_inputs > 1 else ""))
    if spec.max_inputs == 0 and count:
        return f"{spec.type} takes no input: remove the wire from {ins[0][1]}"
    if count < spec.min_inputs:
        if count == 0:
            return f"{spec.type} has no input: wire a block's output into it"
        return f"{spec.type} needs {spec.input_range()}, but {count} is connected: wire another"
    if spec.max_inputs is not None and count > spec.max_inputs:
        return (f"{spec.type} takes {spec.input_range()}, but {count} are connected "
                f"({', '.join(s for _, s in ins)}): merge them first with Add or Concat")
    if spec.max_inputs == 1 and ports[0] != 0:
        return f"{spec.type} has one input port, 0, but the wire goes into port {ports[0]}"
    return None


def _receptive_field(in_infos: tuple[NodeInfo, ...],
                     steps: list[tuple[float, float]]) -> tuple[float, float]:
    """Grow the largest incoming receptive field by this block's (kernel, stride) steps."""
    states = [i.rf_state for i in in_infos if i.rf_state is not None]
    rf, jump = max(states) if states else (1.0, 1.0)
    for k, s in steps:
        rf += (k - 1) * jump
        jump *= s
    return rf, jump

