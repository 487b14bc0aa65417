"""Blocks made of blocks (SPEC §9): the file's ``"blocks"`` definitions.

A user block is a small graph (its *body*) with declared parameters (its
*arguments*). A node whose ``type`` names a user block is an *instance*: its input
ports are the body's ``Input`` nodes in the order listed, its output the body's
``Output``, and a body parameter written ``"$name"`` takes the instance's argument.

Each definition is turned into a :class:`~engine.spec.BlockSpec` (``UserBlock.spec``)
so the palette, the inspector and the wiring checks treat an instance like any
catalogue block; only analysis, compilation and export look inside, through this
module. Definitions are read leniently, like the rest of a graph: a block that uses
itself or a ``$name`` it does not declare still loads, and every instance of it gets
an error that names the block, so the editor can open the file and the user fix it.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import networkx as nx

from .errors import BlockError, NodeError
from .graph import ID_PATTERN
from .spec import BlockSpec, Params, ParamSpec, Shape

if TYPE_CHECKING:
    from .graph import Graph

CATEGORY = "This design"
PARAM_TYPES = ("int", "float", "bool", "str", "int2")
_DECL_KEYS = {"type", "default", "min", "max", "choices", "doc"}
_BLOCK_KEYS = {"doc", "params", "nodes", "edges"}
_ARG = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)\Z")


def arg_name(value: Any) -> str | None:
    """``"width"`` for the body value ``"$width"``, else None."""
    if isinstance(value, str):
        m = _ARG.match(value)
        if m:
            return m.group(1)
    return None


def substitute(params: Mapping[str, Any], args: Mapping[str, Any]) -> dict[str, Any]:
    """Body params with every ``"$name"`` (also inside a pair) replaced by its argument;
    an undeclared name is left as written (the definition check reports it)."""
    def one(v: Any) -> Any:
        name = arg_name(v)
        if name is not None:
            return args.get(name, v)
        if isinstance(v, list):
            return [one(x) for x in v]
        return v
    return {k: one(v) for k, v in params.items()}


def used_args(params: Mapping[str, Any]) -> Iterable[tuple[str, str]]:
    """``(param, argument)`` for every ``"$argument"`` in a node's params."""
    for k, v in params.items():
        for x in (v if isinstance(v, list) else [v]):
            name = arg_name(x)
            if name is not None:
                yield k, name


@dataclass
class UserBlock:
    """One definition: arguments as declared in the file, and the body graph.

    ``body.blocks`` is the very dict of the graph that holds this definition, so a body
    may use the file's other blocks. ``revision`` goes up whenever the definition is
    replaced or its declarations change, so the analysis knows to look again.
    """

    name: str
    declarations: dict[str, dict[str, Any]]
    body: Graph
    doc: str = ""
    extra: dict[str, Any] = field(default_factory=dict)
    revision: int = 0
    _spec: BlockSpec | None = field(default=None, repr=False, compare=False)

    @property
    def input_ids(self) -> list[str]:
        """The body's Input nodes: the instance's input ports 0, 1, … in listed order."""
        return [n for n in self.body.nodes if self.body.type_of(n) == "Input"]

    @property
    def spec(self) -> BlockSpec:
        """A catalogue-like spec: ports, arguments with defaults and ranges, subtitle."""
        if self._spec is None:
            params = tuple(param_spec(n, d) for n, d in self.declarations.items())
            count = len(self.input_ids)
            self._spec = BlockSpec(
                type=self.name, category=CATEGORY,
                doc=self.doc or f"A block of this design ({len(self.body)} blocks inside).",
                params=params, infer=_analysed_elsewhere,
                id_prefix=_prefix(self.name), subtitle=_subtitle(params),
                min_inputs=count, max_inputs=count, source="this design")
        return self._spec

    def changed(self) -> None:
        """Call after editing ``declarations`` or ``doc`` in place."""
        self._spec = None
        self.revision += 1

    def to_dict(self) -> dict[str, Any]:
        nodes, edges = self.body.nodes_and_edges()
        out: dict[str, Any] = {}
        if self.doc:
            out["doc"] = self.doc
        out["params"] = copy.deepcopy(self.declarations)
        out["nodes"] = nodes
        out["edges"] = edges
        out.update(copy.deepcopy(self.extra))
        return out


def _analysed_elsewhere(p: Params, ins: list[Shape]) -> Shape:
    raise BlockError("a block made of blocks is analysed through its body")


def _prefix(name: str) -> str:
    return re.sub(r"\W", "_", name.lower()) or "block"


def _subtitle(params: tuple[ParamSpec, ...]) -> Callable[[Params], str]:
    def subtitle(p: Params) -> str:
        parts = []
        for ps in params[:3]:
            v = p.get(ps.name, ps.default)
            parts.append(f"{v[0]}×{v[1]}" if isinstance(v, list | tuple) else str(v))
        return " · ".join(parts)
    return subtitle


def param_spec(name: str, decl: Mapping[str, Any]) -> ParamSpec:
    """The ParamSpec of a checked declaration (``check_declaration`` said it is fine)."""
    kind = decl["type"]
    choices = tuple(decl.get("choices", ()))
    default = decl["default"]
    if kind == "int2" and isinstance(default, list):
        default = tuple(default)
    return ParamSpec(name, "choice" if kind == "str" else kind, default, str(decl.get("doc", "")),
                     decl.get("min"), decl.get("max"), choices)


def check_declaration(block: str, name: str, decl: Any) -> str | None:
    """What is wrong with one argument declaration, or None."""
    where = f"block {block!r}, parameter {name!r}"
    if not ID_PATTERN.match(name):
        return f"{where}: the name must use letters, digits and _, not starting with a digit"
    if not isinstance(decl, dict):
        return f'{where}: write it as an object such as {{"type": "int", "default": 64}}'
    kind = decl.get("type")
    if kind not in PARAM_TYPES:
        return f"{where}: type {kind!r} is not one of {', '.join(PARAM_TYPES)}"
    if "default" not in decl:
        return f"{where}: give it a default"
    if kind == "str":
        choices = decl.get("choices")
        if not (isinstance(choices, list) and choices and all(isinstance(c, str)
                                                              for c in choices)):
            return f'{where}: a str parameter needs "choices", a list of strings'
    elif "choices" in decl:
        return f'{where}: only a str parameter has "choices"'
    for bound in ("min", "max"):
        b = decl.get(bound)
        if b is not None and (isinstance(b, bool) or not isinstance(b, int | float)
                              or kind not in ("int", "float", "int2")):
            return f"{where}: {bound} must be a number, for an int, float or int2 parameter"
    try:
        param_spec(name, decl).normalize(decl["default"])
    except (ValueError, TypeError) as exc:
        return f"{where}: default {decl['default']!r}: {exc}"
    return None


# ---- reading -------------------------------------------------------------------------


def read_blocks(data: Any, blocks: dict[str, UserBlock],
                reader_factory: Callable[[set[str]], Any], fail: Callable[[str], None],
                make_body: Callable[[str], Graph]) -> set[str]:
    """Fill ``blocks`` from the file's ``"blocks"`` object, calling ``fail`` for each
    unreadable part. Names come first, so a body may use a block defined after it.
    Returns the names of the definitions refused, so that the nodes using them are not
    reported again as of an unknown type."""
    from .blocks import CATALOGUE

    refused: set[str] = set()
    if not isinstance(data, dict):
        fail('"blocks" must be an object: {"Name": {"params": …, "nodes": …, "edges": …}}')
        return refused
    wanted: list[tuple[UserBlock, dict]] = []
    for name, d in data.items():
        if not ID_PATTERN.match(name):
            fail(f"block name {name!r} is not a valid name: use letters, digits and _")
            continue
        if name in CATALOGUE:
            fail(f"block {name!r} has the name of a built-in block: rename it")
            continue
        refused.add(name)  # until it is read
        if not isinstance(d, dict):
            fail(f"block {name!r} must be an object with params, nodes and edges")
            continue
        decls = d.get("params", {})
        if not isinstance(decls, dict):
            fail(f"block {name!r}: params must be an object of declarations")
            continue
        bad = [m for n, decl in decls.items() if (m := check_declaration(name, n, decl))]
        for m in bad:
            fail(m)
        if bad:
            continue
        if not isinstance(d.get("nodes"), list) or not isinstance(d.get("edges", []), list):
            fail(f"block {name!r}: nodes and edges must be lists, as in a graph")
            continue
        doc = d.get("doc", "")
        ub = UserBlock(name, {n: dict(decl) for n, decl in decls.items()}, make_body(name),
                       doc if isinstance(doc, str) else "",
                       {k: v for k, v in d.items() if k not in _BLOCK_KEYS})
        blocks[name] = ub
        refused.discard(name)
        wanted.append((ub, d))
    for ub, d in wanted:
        reader = reader_factory(refused)
        for i, node in enumerate(d["nodes"]):
            reader._read_node(ub.body, i, node)
        for i, edge in enumerate(d.get("edges", [])):
            reader._read_edge(ub.body, i, edge)
        for p in reader.problems:
            where = f"block {ub.name!r}" + (f", node {p.node!r}" if p.node else "")
            fail(f"{where}: {p.message}")
    return refused


# ---- definition checks ---------------------------------------------------------------


def fingerprint(blocks: Mapping[str, UserBlock]) -> tuple:
    """Changes whenever any definition or body changes (revisions only grow)."""
    return tuple((name, id(ub), ub.revision, ub.body.structure_revision,
                  sum(ub.body._node_revision.values())) for name, ub in blocks.items())


def definition_problems(blocks: Mapping[str, UserBlock]) -> dict[str, str]:
    """Block name → what makes every instance of it unusable: it uses itself (the cycle
    is named), a ``$name`` it does not declare, a body without one Output, …"""
    problems: dict[str, str] = {}
    uses = nx.DiGraph()
    for name, ub in blocks.items():
        uses.add_node(name)
        body = ub.body
        for n in body.nodes:
            t = body.type_of(n)
            if t in blocks:
                uses.add_edge(name, t)
            for param, arg in used_args(body.params_of(n)):
                if arg not in ub.declarations and name not in problems:
                    problems[name] = (
                        f"block {name}: {n}.{param} is ${arg}, which {name} does not "
                        f"declare: add {arg!r} to its parameters or write a value")
        outputs = [n for n in body.nodes if body.type_of(n) == "Output"]
        if name not in problems:
            if not ub.input_ids:
                problems[name] = f"block {name}: its body has no Input: add one (a port)"
            elif len(outputs) != 1:
                problems[name] = (f"block {name}: its body needs exactly one Output, "
                                  f"it has {len(outputs)}")
            elif body.topo_order() is None:
                problems[name] = f"block {name}: its body has a cycle: data must flow one way"
    for cycle in nx.simple_cycles(uses):
        for i, name in enumerate(cycle):
            turn = cycle[i:] + cycle[:i]  # told from this block's side
            path = " → ".join([*turn, name])
            problems[name] = (f"block {name} uses itself ({path}): a block cannot contain "
                              f"itself; remove {turn[1 % len(turn)]} from the body of {name}")
    for name in blocks:  # users of a broken block are broken too
        if name not in problems:
            for dep in sorted(nx.descendants(uses, name)):
                if dep in problems:
                    problems[name] = f"block {name} uses {dep}, which is wrong: " \
                                     f"{problems[dep]}"
                    break
    return problems


# ---- analysis through the body -------------------------------------------------------


@dataclass(frozen=True)
class BodyError(NodeError):
    """An error inside an instance's body, on the instance: ``path`` is
    ``(instance, inner, …)`` down to the node at fault, ``leaf`` that node's message."""

    path: tuple[str, ...] = ()
    leaf: str = ""


@dataclass
class UserState:
    """Per-analysis knowledge of the definitions: what is wrong with each, and the body
    results already worked out for (block, arguments, input shapes and fields)."""

    fingerprint: tuple
    problems: dict[str, str]
    cache: dict[tuple, Any] = field(default_factory=dict)  # body results, used nodes
    caching: bool = True


@dataclass(frozen=True)
class _BodyResult:
    inner: dict[str, Any]  # inner id → NodeInfo, used nodes only, in order
    output_shape: Shape | None
    params: int
    macs: int
    activations: int
    saved: int
    rf_state: tuple[float, float] | None
    error: tuple[tuple[str, ...], str, str | None] | None  # (path below, leaf, argument)


_STATE_KEY = ("user blocks",)


def user_state(graph: Graph) -> UserState:
    """The definitions' state for this graph, worked out again only after they change."""
    fp = fingerprint(graph.blocks)
    cached = graph.analysis_memo.get(_STATE_KEY)
    if cached is None or cached.fingerprint != fp:
        cached = UserState(fp, definition_problems(graph.blocks))
        graph.analysis_memo[_STATE_KEY] = cached
    return cached


def forget_instances(graph: Graph) -> UserState:
    """Drop the analysis memo of every instance when a definition changed since the last
    analysis, so each is analysed through its new body (called by ``analyze``); returns
    the definitions' state for this analysis."""
    before = graph.analysis_memo.get(_STATE_KEY)
    state = user_state(graph)
    if state is not before:
        memo = graph.analysis_memo
        for n in graph.nodes:
            if graph.type_of(n) in graph.blocks:
                memo.pop(n, None)
    return state


def used_nodes(block: UserBlock) -> list[str]:
    """The Inputs in listed order (the ports 0, 1, …: the compiled body's arguments),
    then the body's nodes that lead to its Output, in dependency order."""
    body = block.body
    inputs = block.input_ids
    out = next(n for n in body.nodes if body.type_of(n) == "Output")
    keep = nx.ancestors(body.nx, out) | {out}
    return inputs + [n for n in body.topo_order() or [] if n in keep and n not in inputs]


def body_warnings(graph: Graph, infos: Mapping[str, Any]) -> list[NodeError]:
    """A body's blocks that do not lead to its Output are left out of the model, as at
    the top level: one warning per instance, on the instance, as ``instance/inner_id``."""
    out = []
    unused: dict[str, list[str]] = {}  # per block: the same for all its instances

    def visit(node: str, path: str, info: Any) -> None:
        if info.type not in unused:
            body = graph.blocks[info.type].body
            unused[info.type] = [m for m in body.nodes
                                 if m not in info.inner and body.type_of(m) != "Input"]
        for m in unused[info.type]:
            out.append(NodeError(node, f"{path}/{m}: not connected to the Output of "
                                       f"{info.type}: its result is unused and it is "
                                       f"left out of the model"))
        for m, inner in info.inner.items():
            if inner.inner is not None:
                visit(node, f"{path}/{m}", inner)

    for n, info in infos.items():
        if info.inner is not None:
            visit(n, n, info)
    return out


def analyze_instance(graph: Graph, node_id: str, block: UserBlock, resolved: Mapping[str, Any],
                     in_infos: tuple, state: UserState | None = None) -> Any:
    """The NodeInfo of an instance: shape, counts and receptive field of its body for
    these arguments and inputs; an error inside is put on the instance as
    ``instance/inner_id``."""
    from .analysis import NodeInfo

    state = state if state is not None else user_state(graph)
    problem = state.problems.get(block.name)
    if problem is not None:
        return NodeInfo(node_id, block.name, error=NodeError(node_id, problem),
                        resolved=resolved)
    r = _walk(block, resolved, in_infos, state)
    if r.error is not None:
        below, leaf, arg = r.error
        path = (node_id, *below)
        return NodeInfo(node_id, block.name, resolved=resolved, inner=r.inner,
                        error=BodyError(node_id, f"{'/'.join(path)}: {leaf}", arg, path, leaf))
    if r.output_shape is None:
        return NodeInfo(node_id, block.name, resolved=resolved, inner=r.inner)
    rf, jump = r.rf_state if r.rf_state is not None else (1.0, 1.0)
    spatial = len(r.output_shape) == 3
    return NodeInfo(node_id, block.name, r.output_shape, r.params, r.macs, r.activations,
                    r.saved, rf if spatial else None, jump if spatial else None, None,
                    resolved, r.rf_state, r.inner)


def body_infos(block: UserBlock, args: Mapping[str, Any], in_infos: tuple,
               state: UserState) -> dict[str, Any]:
    """The inner NodeInfos of one instance, worked out afresh (no cache): the ``.py``
    export runs it with arguments that remember their names."""
    fresh = UserState(state.fingerprint, state.problems, caching=False)
    return _walk(block, args, in_infos, fresh).inner


def _walk(block: UserBlock, args: Mapping[str, Any], in_infos: tuple,
          state: UserState) -> _BodyResult:
    from .analysis import NodeInfo, _with_receptive_field, analyze_node, runs_inplace

    shapes = (block.name, tuple(args.items()), tuple(i.output_shape for i in in_infos))
    key = (*shapes, tuple(i.rf_state for i in in_infos))
    use_cache = state.caching
    near = None  # the same body, arguments and input shapes: only receptive fields differ
    if use_cache:
        hit = state.cache.get(key)
        if hit is not None:
            return hit
        near = state.cache.get(("shapes", *shapes))
    body = block.body
    infos: dict[str, NodeInfo] = {}
    ports = iter(in_infos)
    error = None
    order = state.cache.get(("used", block.name)) if use_cache else None
    if order is None:
        order = used_nodes(block)
        if use_cache:
            state.cache[("used", block.name)] = order
    reused = near is not None  # every node's counts are near's: only the RF is new
    for m in order:
        t = body.type_of(m)
        if t == "Input":
            src = next(ports)
            infos[m] = NodeInfo(m, t, src.output_shape, receptive_field=src.receptive_field,
                                jump=src.jump, resolved={}, rf_state=src.rf_state)
            continue
        ins = body.inputs_of(m)
        prev = near.inner.get(m) if near is not None else None
        if (prev is not None and prev.error is None and prev.output_shape is not None
                and prev.inner is None):
            # as analyze() does for an unchanged node: params and shapes are the same,
            # so only the receptive field is grown again (many instances of one block
            # in a row differ in nothing else)
            info = _with_receptive_field(prev, tuple(infos[s] for _, s in ins))
        else:
            reused = False
            raw = substitute(body.params_of(m), args)
            info = analyze_node(body, m, ins, tuple(infos[s] for _, s in ins), raw=raw,
                                state=state)
        infos[m] = info
        if info.error is not None and error is None:
            e = info.error
            below = e.path if isinstance(e, BodyError) else (m,)
            leaf = e.leaf if isinstance(e, BodyError) else e.message
            arg = arg_name(body.params_of(m).get(e.param)) if e.param else None
            error = (below, leaf, arg)
    out = infos[next(n for n in infos if infos[n].type == "Output")]
    if reused and error is None and near.error is None:
        # the same counts as near's (shapes, params and in-place ReLUs do not depend on
        # the receptive field): 100 instances of one block re-analysed in a few ms
        result = _BodyResult(infos, near.output_shape, near.params, near.macs,
                             near.activations, near.saved, out.rf_state, None)
    else:
        inplace = {m for m, i in infos.items() if i.type == "Activation" and i.error is None
                   and runs_inplace(body, m, i)}
        inner_only = [i for i in infos.values() if i.type not in ("Input", "Output")]
        result = _BodyResult(
            infos, out.output_shape, sum(i.params for i in inner_only),
            sum(i.macs for i in inner_only), sum(i.activations for i in inner_only),
            sum(i.saved_activations for i in inner_only if i.id not in inplace),
            out.rf_state, error)
    if use_cache:
        state.cache[key] = result
        state.cache.setdefault(("shapes", *shapes), result)
    return result


def expanded(infos: Mapping[str, Any], prefix: str = "") -> Iterable[tuple[str, Any]]:
    """``(path, info)`` for every node, and after each instance its body's nodes (not its
    Inputs and Output) as ``instance/inner_id``, depth first: ``summary --expand``."""
    for n, info in infos.items():
        if prefix and info.type in ("Input", "Output"):
            continue
        path = f"{prefix}{n}"
        yield path, info
        if info.inner is not None:
            yield from expanded(info.inner, f"{path}/")
