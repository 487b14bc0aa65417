"""Group a selection into a block made of blocks, and put an instance's body back
(SPEC §9): pure graph transformations, so the editor can wrap each in one undo step.

``group`` moves the selected nodes into a new definition and puts one instance in
their place with every wire kept: the wires into the selection become the block's
input ports (one per outside source, in the order the selection first uses them),
the one node whose result leaves the selection feeds the body's Output. Chosen inner
parameters become arguments, with their current values as defaults. ``ungroup``
puts an instance's body back with its arguments filled in; the definition stays for
the other instances.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import networkx as nx

from .blocks import CATALOGUE
from .graph import ID_PATTERN, Graph
from .user_blocks import UserBlock, substitute

_KINDS = {"int": "int", "float": "float", "bool": "bool", "choice": "str", "int2": "int2"}
Argument = tuple[str, str]  # (inner node id, parameter name)


def group(graph: Graph, node_ids: Iterable[str], name: str,
          arguments: Mapping[str, Argument | Iterable[Argument]] | None = None
          ) -> tuple[Graph, str]:
    """A copy of ``graph`` with ``node_ids`` replaced by one instance of a new block
    ``name``; returns it and the instance's id. ``arguments`` maps an argument name to
    the inner parameter(s) it sets. Raises ValueError saying what to change when the
    selection cannot be one block."""
    selected = list(dict.fromkeys(node_ids))
    _check_selection(graph, selected, name)
    chosen = set(selected)
    order = [n for n in graph.topo_order() or [] if n in chosen]
    sources: list[str] = []  # outside nodes wired into the selection: the input ports
    for n in order:
        for _, src in graph.inputs_of(n):
            if src not in chosen and src not in sources:
                sources.append(src)
    leaving = [n for n in order if any(c not in chosen for c in graph.consumers_of(n))]
    if len(leaving) != 1:
        what = ("nothing leaves it" if not leaving
                else f"{', '.join(leaving)} all feed blocks outside it")
        raise ValueError(f"a block has one output, but {what}: select the blocks so that "
                         f"exactly one of them feeds the rest of the design")
    if not sources:
        raise ValueError("nothing is wired into the selection: a block needs an input")
    declarations, uses = _declarations(graph, selected, arguments or {})

    out = graph.copy()
    body = Graph(name)
    body.blocks = out.blocks
    ins = _free_ids(["x"] if len(sources) == 1 else [f"x{i}" for i in range(1, len(sources) + 1)],
                    chosen)
    (y,) = _free_ids(["y"], chosen | set(ins))
    origin = _origin(graph, selected)
    for i, port_id in enumerate(ins):
        body.add_node(port_id, "Input", {}, (origin[0] - 150, origin[1] + 100 * i))
    for n in selected:
        params = dict(graph.params_of(n))
        for arg, targets in uses.items():
            for node, param in targets:
                if node == n:
                    params[param] = f"${arg}"
        pos = graph.pos_of(n)
        body.add_node(n, graph.type_of(n), params, pos,
                      graph.nx.nodes[n]["extra"])
    end = graph.pos_of(leaving[0])
    body.add_node(y, "Output", {}, (end[0], end[1] + 100) if end else None)
    for n in selected:
        for port, src in graph.inputs_of(n):
            body.add_edge(src if src in chosen else ins[sources.index(src)], n, port)
    body.add_edge(leaving[0], y)
    out.blocks[name] = UserBlock(name, declarations, body)

    consumers = [(v, k, data["extra"]) for _, v, k, data in
                 graph.nx.out_edges(leaving[0], keys=True, data=True) if v not in chosen]
    pos = graph.pos_of(leaving[0])
    for n in selected:
        out.remove_node(n)
    instance = out.new_id(out.spec(name).prefix())
    out.add_node(instance, name, {a: d["default"] for a, d in declarations.items()}, pos)
    for port, src in enumerate(sources):
        out.add_edge(src, instance, port)
    for dst, port, extra in consumers:
        out.add_edge(instance, dst, port, extra)
    return out, instance


def ungroup(graph: Graph, instance_id: str) -> Graph:
    """A copy of ``graph`` with the instance replaced by its body, arguments filled in;
    inner ids are kept where free, else become ``instance_inner``."""
    type_name = graph.type_of(instance_id)
    if type_name not in graph.blocks:
        raise ValueError(f"{instance_id} is a {type_name}, not a block made of blocks: "
                         f"only those can be ungrouped")
    block = graph.blocks[type_name]
    body = block.body
    args = {a: d["default"] for a, d in block.declarations.items()}
    args.update(graph.params_of(instance_id))
    out = graph.copy()
    inputs = block.input_ids
    output = next(n for n in body.nodes if body.type_of(n) == "Output")
    inner = [n for n in body.nodes if n not in inputs and n != output]
    taken = set(graph.nodes) - {instance_id}
    ids: dict[str, str] = {}
    for n in inner:
        new = n if n not in taken else f"{instance_id}_{n}"
        while new in taken:
            new += "_"
        taken.add(new)
        ids[n] = new
    at = graph.pos_of(instance_id)
    base = _origin(body, inner)
    frozen = graph.is_frozen(instance_id)
    sources = dict(graph.inputs_of(instance_id))  # port → outside source
    consumers = [(v, k, data["extra"]) for _, v, k, data in
                 graph.nx.out_edges(instance_id, keys=True, data=True)]
    out.remove_node(instance_id)
    for n in inner:
        p = body.pos_of(n)
        pos = (at[0] + p[0] - base[0], at[1] + p[1] - base[1]) if at and p else p
        params = _plain(substitute(body.params_of(n), args))
        out.add_node(ids[n], body.type_of(n), params, pos, body.nx.nodes[n]["extra"])
        if frozen:
            out.set_frozen(ids[n], True)
    for src, dst, port in ((e.src, e.dst, e.port) for e in body.edges()):
        if dst == output:
            continue
        if src in inputs:
            outside = sources.get(inputs.index(src))
            if outside is not None:
                out.add_edge(outside, ids[dst], port)
        else:
            out.add_edge(ids[src], ids[dst], port)
    feeding = body.inputs_of(output)
    last = feeding[0][1] if len(feeding) == 1 else None
    result = sources.get(inputs.index(last)) if last in inputs else ids.get(last)
    if result is not None:
        for dst, port, extra in consumers:
            out.add_edge(result, dst, port, extra)
    return out


def _check_selection(graph: Graph, selected: list[str], name: str) -> None:
    if not selected:
        raise ValueError("select the blocks to group first")
    missing = [n for n in selected if n not in graph]
    if missing:
        raise ValueError(f"no node {missing[0]!r} in the design")
    ends = [n for n in selected if graph.type_of(n) in ("Input", "Output")]
    if ends:
        raise ValueError(f"{ends[0]} is the design's {graph.type_of(ends[0])}: leave it out "
                         f"of the selection")
    if not isinstance(name, str) or not ID_PATTERN.match(name):
        raise ValueError(f"block name {name!r} is not a valid name: use letters, digits "
                         f"and _, not starting with a digit")
    if name in CATALOGUE or name in graph.blocks:
        raise ValueError(f"a block named {name} exists already: choose another name")
    chosen = set(selected)
    after = set().union(*(nx.descendants(graph.nx, n) for n in selected)) - chosen
    for n in after:
        if nx.descendants(graph.nx, n) & chosen:
            raise ValueError(f"{n} is between blocks of the selection (data leaves the "
                             f"selection through it and comes back): select it too, or "
                             f"fewer blocks")


def _declarations(graph: Graph, selected: list[str],
                  arguments: Mapping[str, Any]) -> tuple[dict[str, dict], dict[str, list]]:
    declarations: dict[str, dict] = {}
    uses: dict[str, list[Argument]] = {}
    for arg, targets in arguments.items():
        if not ID_PATTERN.match(arg):
            raise ValueError(f"argument name {arg!r} is not a valid name: use letters, "
                             f"digits and _")
        targets = [targets] if isinstance(targets, tuple) else list(targets)
        decl = None
        for node, param in targets:
            if node not in selected:
                raise ValueError(f"argument {arg}: {node} is not in the selection")
            spec = graph.spec(graph.type_of(node))
            ps = spec.param_index.get(param)
            if ps is None:
                raise ValueError(f"argument {arg}: {spec.type} has no parameter {param!r}")
            value = graph.params_of(node).get(param, ps.default)
            if ps.nullable or (isinstance(value, str) and value in ps.words):
                raise ValueError(f"argument {arg}: {node}.{param} is {value!r}, which an "
                                 f"argument cannot hold: give it a number first")
            mine = {"type": _KINDS[ps.kind],
                    "default": list(value) if isinstance(value, tuple) else value}
            if ps.choices:
                mine["choices"] = list(ps.choices)
            for bound, v in (("min", ps.minimum), ("max", ps.maximum)):
                if v is not None:
                    mine[bound] = v
            if decl is not None and decl != mine:
                raise ValueError(f"argument {arg} sets parameters of different kinds or "
                                 f"values: give each its own argument")
            decl = mine
        if decl is None:
            raise ValueError(f"argument {arg} sets no parameter: pick one")
        declarations[arg] = decl
        uses[arg] = targets
    return declarations, uses


def _free_ids(wanted: list[str], taken: set[str]) -> list[str]:
    out = []
    for w in wanted:
        while w in taken or w in out:
            w += "_"
        out.append(w)
    return out


def _origin(graph: Graph, nodes: list[str]) -> tuple[float, float]:
    placed = [graph.pos_of(n) for n in nodes if graph.pos_of(n) is not None]
    if not placed:
        return (0.0, 0.0)
    return (min(p[0] for p in placed), min(p[1] for p in placed))


def _plain(params: dict[str, Any]) -> dict[str, Any]:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in params.items()}
