"""The network as a graph of blocks, and its JSON file format (SPEC §1).

A :class:`Graph` may hold an unfinished or wrong design: the editor needs to show a
wire into the wrong port or a parameter out of range on the block itself, so only
problems that make a file unreadable are refused on load; the rest are per-node
errors found by :func:`engine.analyze`.
"""

from __future__ import annotations

import copy
import json
import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import networkx as nx

from .blocks import CATALOGUE
from .errors import GraphFileError, NodeError
from .files import write_text_atomically
from .spec import BlockSpec

if TYPE_CHECKING:
    from .user_blocks import UserBlock

FORMAT = "convas.graph"
VERSION = 1
ID_PATTERN = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")

_NODE_KEYS = {"id", "type", "params", "pos"}
# A node key the program reads but keeps among the node's other keys ("extra"), so every
# path that copies a node's extra keys (undo, copy and paste, save) carries it along.
FROZEN = "frozen"
_EDGE_KEYS = {"from", "to", "port"}
_TOP_KEYS = {"format", "version", "name", "blocks", "nodes", "edges", "training"}

# Migrations from an older file version to the next; the format is at its first version.
_MIGRATIONS: dict[int, Any] = {}


@dataclass(frozen=True)
class Edge:
    src: str
    dst: str
    port: int = 0


class Graph:
    """Blocks (nodes) and wires (edges into numbered input ports) over ``networkx``.

    Every edit bumps a revision counter so the analysis can reuse what did not change:
    ``structure_revision`` for nodes and wires, one counter per node for its params.

    A node marked frozen (``"frozen": true`` beside its params, SPEC §8) is not trained:
    its weights keep their values and its BatchNorm statistics are not updated. The mark
    lives among the node's extra keys, present only when true.
    """

    def __init__(self, name: str = "Untitled") -> None:
        self.name = name
        self.nx = nx.MultiDiGraph()  # edge key = destination port
        self.training: dict[str, Any] = {}
        self.extra: dict[str, Any] = {}  # unknown top-level keys, kept on save
        self.structure_revision = 0
        self._node_revision: dict[str, int] = {}
        self._topo: tuple[int, list[str] | None] | None = None
        self._inputs: dict[str, list[tuple[int, str]]] = {}
        self._inputs_revision = -1
        self._frozen_revision = 0
        self._frozen: tuple[tuple[int, int], frozenset[str]] | None = None
        self.analysis_memo: dict[str, Any] = {}  # owned by engine.analysis
        # The file's blocks made of blocks (SPEC §9), by name; a body shares this dict.
        self.blocks: dict[str, UserBlock] = {}

    def spec(self, type_name: str) -> BlockSpec:
        """The spec of a catalogue block or of one of this file's user blocks."""
        spec = CATALOGUE.get(type_name)
        return spec if spec is not None else self.blocks[type_name].spec

    # ---- nodes ------------------------------------------------------------------------

    def add_node(self, node_id: str, type_name: str, params: dict[str, Any] | None = None,
                 pos: Iterable[float] | None = None, extra: dict[str, Any] | None = None) -> str:
        if not isinstance(node_id, str) or not ID_PATTERN.match(node_id):
            raise ValueError(
                f"id {node_id!r} is not a valid name: use letters, digits and _, "
                f"not starting with a digit"
            )
        if node_id in self.nx:
            raise ValueError(f"id {node_id!r} is already used: choose another id")
        if type_name not in CATALOGUE and type_name not in self.blocks:
            raise ValueError(unknown_type_message(type_name))
        extra = dict(extra or {})
        if FROZEN in extra:
            if not isinstance(extra[FROZEN], bool):
                raise ValueError(f"{FROZEN} {extra[FROZEN]!r} must be true or false")
            if not extra[FROZEN]:
                del extra[FROZEN]  # kept only when true, so files stay as they were
        self.nx.add_node(node_id, type=type_name, params=dict(params or {}),
                         pos=tuple(pos) if pos is not None else None, extra=extra)
        self._node_revision[node_id] = 0
        self._structure_changed()
        return node_id

    def remove_node(self, node_id: str) -> None:
        self.nx.remove_node(node_id)
        del self._node_revision[node_id]
        self.analysis_memo.pop(node_id, None)
        self._structure_changed()

    def new_id(self, prefix: str) -> str:
        """A free id such as ``conv3`` for a new block of the given kind."""
        base = re.sub(r"\W", "_", prefix.lower()) or "node"
        if base[0].isdigit():
            base = "_" + base
        i = 1
        while f"{base}{i}" in self.nx:
            i += 1
        return f"{base}{i}"

    def __contains__(self, node_id: object) -> bool:
        return node_id in self.nx

    def __len__(self) -> int:
        return self.nx.number_of_nodes()

    @property
    def nodes(self) -> list[str]:
        return list(self.nx.nodes)

    def type_of(self, node_id: str) -> str:
        return self.nx.nodes[node_id]["type"]

    def params_of(self, node_id: str) -> dict[str, Any]:
        """The parameters as the user set them (defaults left out); do not mutate."""
        return self.nx.nodes[node_id]["params"]

    def pos_of(self, node_id: str) -> tuple[float, float] | None:
        return self.nx.nodes[node_id]["pos"]

    def set_param(self, node_id: str, name: str, value: Any) -> None:
        """Set one parameter; ``None`` for a non-nullable one means "back to the default"."""
        params = self.nx.nodes[node_id]["params"]
        spec = self.spec(self.type_of(node_id)).param_index.get(name)
        if value is None and (spec is None or not spec.nullable):
            params.pop(name, None)
        else:
            params[name] = value
        self._node_revision[node_id] += 1

    def set_params(self, node_id: str, params: dict[str, Any]) -> None:
        """Replace all parameters at once (undo restores a snapshot this way)."""
        self.nx.nodes[node_id]["params"] = dict(params)
        self._node_revision[node_id] += 1

    def set_pos(self, node_id: str, pos: Iterable[float] | None) -> None:
        self.nx.nodes[node_id]["pos"] = tuple(pos) if pos is not None else None

    def node_revision(self, node_id: str) -> int:
        return self._node_revision[node_id]

    def is_frozen(self, node_id: str) -> bool:
        """Whether training leaves this node's weights and BatchNorm statistics alone."""
        return self.nx.nodes[node_id]["extra"].get(FROZEN) is True

    def set_frozen(self, node_id: str, frozen: bool) -> None:
        """Freeze (keep its weights as loaded) or unfreeze one node; a whole block
        (ResidualBlock, a block made of blocks) freezes as one."""
        extra = self.nx.nodes[node_id]["extra"]
        if frozen:
            extra[FROZEN] = True
        else:
            extra.pop(FROZEN, None)
        self._frozen_revision += 1

    def frozen_nodes(self) -> frozenset[str]:
        """The frozen nodes, remembered until a node, a wire or a mark changes, so the
        analysis pays nothing per node for it."""
        key = (self.structure_revision, self._frozen_revision)
        if self._frozen is None or self._frozen[0] != key:
            self._frozen = (key, frozenset(
                n for n, extra in self.nx.nodes(data="extra") if extra.get(FROZEN) is True))
        return self._frozen[1]

    # ---- edges ------------------------------------------------------------------------

    def add_edge(self, src: str, dst: str, port: int = 0,
                 extra: dict[str, Any] | None = None) -> Edge:
        for end in (src, dst):
            if end not in self.nx:
                raise ValueError(f"no node {end!r}: connect existing blocks only")
        if not isinstance(port, int) or isinstance(port, bool) or port < 0:
            raise ValueError(f"port {port!r} must be an integer ≥ 0")
        if self.nx.has_edge(src, dst, key=port):
            raise ValueError(f"{src} → {dst} (port {port}) is already connected")
        self.nx.add_edge(src, dst, key=port, extra=dict(extra or {}))
        self._structure_changed()
        return Edge(src, dst, port)

    def remove_edge(self, src: str, dst: str, port: int = 0) -> None:
        self.nx.remove_edge(src, dst, key=port)
        self._structure_changed()

    def edges(self) -> list[Edge]:
        return [Edge(u, v, k) for u, v, k in self.nx.edges(keys=True)]

    def free_port(self, node_id: str) -> int:
        """The lowest input port of ``node_id`` with no wire in it."""
        used = {port for port, _ in self.inputs_of(node_id)}
        port = 0
        while port in used:
            port += 1
        return port

    def inputs_of(self, node_id: str) -> list[tuple[int, str]]:
        """``(port, source)`` pairs in ascending port order (the order Concat uses)."""
        if self._inputs_revision != self.structure_revision:
            self._inputs = {
                n: sorted((k, u) for u, _, k in self.nx.in_edges(n, keys=True))
                for n in self.nx.nodes
            }
            self._inputs_revision = self.structure_revision
        return self._inputs[node_id]

    def consumers_of(self, node_id: str) -> list[str]:
        return list(dict.fromkeys(self.nx.successors(node_id)))

    def topo_order(self) -> list[str] | None:
        """Nodes in dependency order, or None when the graph has a cycle."""
        if self._topo is None or self._topo[0] != self.structure_revision:
            try:
                order: list[str] | None = list(nx.topological_sort(self.nx))
            except nx.NetworkXUnfeasible:
                order = None
            self._topo = (self.structure_revision, order)
        return self._topo[1]

    def _structure_changed(self) -> None:
        self.structure_revision += 1

    # ---- whole-graph ------------------------------------------------------------------

    def copy(self) -> Graph:
        return Graph.from_dict(self.to_dict())

    def to_dict(self) -> dict[str, Any]:
        nodes, edges = self.nodes_and_edges()
        out: dict[str, Any] = {"format": FORMAT, "version": VERSION, "name": self.name}
        if self.blocks:
            out["blocks"] = {n: b.to_dict() for n, b in self.blocks.items()}
        out.update({"nodes": nodes, "edges": edges, "training": copy.deepcopy(self.training)})
        out.update(copy.deepcopy(self.extra))
        return out

    def nodes_and_edges(self) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """The file's ``nodes`` and ``edges`` lists (also a user block's body's)."""
        nodes = []
        for n, data in self.nx.nodes(data=True):
            entry: dict[str, Any] = {"id": n, "type": data["type"],
                                     "params": copy.deepcopy(data["params"])}
            if data["pos"] is not None:
                entry["pos"] = [_plain_number(v) for v in data["pos"]]
            entry.update(copy.deepcopy(data["extra"]))
            nodes.append(entry)
        edges = []
        for u, v, k, data in self.nx.edges(keys=True, data=True):
            entry = {"from": u, "to": v}
            if k:
                entry["port"] = k
            entry.update(copy.deepcopy(data["extra"]))
            edges.append(entry)
        return nodes, edges

    @classmethod
    def from_dict(cls, data: Any) -> Graph:
        """Build a graph from parsed JSON, listing every unreadable part at once."""
        return _GraphReader(data).read()

    @classmethod
    def load(cls, path: str | os.PathLike) -> Graph:
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise GraphFileError(f"{path}: no such file") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise GraphFileError(f"{path}: cannot be read ({exc})") from None
        return cls.loads(text, source=str(path))

    @classmethod
    def loads(cls, text: str, source: str = "<text>") -> Graph:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise GraphFileError(
                f"{source} is not valid JSON (line {exc.lineno}, column {exc.colno}: "
                f"{exc.msg}): fix the file in a text editor or restore a saved copy"
            ) from None
        return cls.from_dict(data)

    def dumps(self) -> str:
        return json.dumps(self.to_dict(), indent=2, ensure_ascii=False) + "\n"

    def save(self, path: str | os.PathLike) -> None:
        """Write atomically: a crash or full disk mid-save leaves the old file intact."""
        write_text_atomically(path, self.dumps())

    def __iter__(self) -> Iterator[str]:
        return iter(self.nx.nodes)

    def __repr__(self) -> str:
        return f"Graph({self.name!r}, {len(self)} nodes, {self.nx.number_of_edges()} edges)"


def unknown_type_message(type_name: Any) -> str:
    """Names the type, the built-in ones and where plug-in blocks are looked for."""
    from .plugins import ENV_VAR, folders_text

    return (f"unknown block type {type_name!r}: use one of {', '.join(CATALOGUE)}, or, if it "
            f"is a plug-in block, put its .py file in one of the folders searched for "
            f"plug-ins ({folders_text()}; add folders with {ENV_VAR})")


def _plain_number(v: float) -> float | int:
    return int(v) if float(v).is_integer() else v


class _GraphReader:
    """Reads SPEC §1 data into a Graph, collecting every problem before refusing."""

    def __init__(self, data: Any, refused_types: set[str] | None = None) -> None:
        self.data = data
        self.problems: list[NodeError] = []
        self.refused: set[str] = set()  # valid ids of nodes refused (an unknown type)
        self.unknown: dict[str, str] = {}  # repr of an unknown type → the first node using it
        # user blocks whose definition was refused (already reported): their nodes are not
        self.refused_types = refused_types or set()

    def fail(self, message: str, node: str | None = None) -> None:
        self.problems.append(NodeError(node, message))

    def read(self) -> Graph:
        data = self.data
        if not isinstance(data, dict):
            raise GraphFileError("the file is not a JSON object: it is not a Convas graph")
        if data.get("format") != FORMAT:
            raise GraphFileError(
                f"format is {data.get('format')!r}, expected {FORMAT!r}: this is not a "
                f"Convas graph file"
            )
        version = data.get("version")
        if isinstance(version, bool) or not isinstance(version, int) or version < 1:
            raise GraphFileError(f"version {version!r} is not a positive integer: "
                                 f"set \"version\": {VERSION}")
        if version > VERSION:
            raise GraphFileError(
                f"the file is version {version}, written by a newer Convas; this one reads "
                f"up to version {VERSION}: update Convas to open it"
            )
        data = copy.deepcopy(data)
        while data["version"] < VERSION:
            data = _MIGRATIONS[data["version"]](data)

        g = Graph(str(data.get("name") or "Untitled"))
        training = data.get("training", {})
        if not isinstance(training, dict):
            self.fail("training must be an object")
            training = {}
        g.training = training
        g.extra = {k: v for k, v in data.items() if k not in _TOP_KEYS}

        nodes, edges = data.get("nodes"), data.get("edges", [])
        if not isinstance(nodes, list):
            raise GraphFileError("nodes must be a list of blocks")
        if not isinstance(edges, list):
            raise GraphFileError("edges must be a list of connections")
        if "blocks" in data:
            from .user_blocks import read_blocks

            def body(name: str) -> Graph:
                b = Graph(name)
                b.blocks = g.blocks
                return b

            self.refused_types = read_blocks(data["blocks"], g.blocks, lambda refused:
                                             _GraphReader(None, refused), self.fail, body)
        for i, node in enumerate(nodes):
            self._read_node(g, i, node)
        for i, edge in enumerate(edges):
            self._read_edge(g, i, edge)
        if self.problems:
            raise GraphFileError(self.problems)
        return g

    def _read_node(self, g: Graph, i: int, node: Any) -> None:
        if not isinstance(node, dict):
            self.fail(f"nodes[{i}] is not an object")
            return
        nid = node.get("id")
        if not isinstance(nid, str) or not ID_PATTERN.match(nid):
            self.fail(f"nodes[{i}] has id {nid!r}, which is not a valid name: use letters, "
                      f"digits and _, not starting with a digit")
            return
        if nid in g:
            self.fail(f"id {nid!r} is used twice: rename one of them", nid)
            return
        type_name = node.get("type")
        if isinstance(type_name, str) and type_name in self.refused_types:
            self.refused.add(nid)
            return
        if (isinstance(type_name, str) and type_name not in CATALOGUE
                and type_name not in g.blocks):  # not one of the file's own (SPEC §9)
            from .plugins import ensure_loaded

            ensure_loaded()  # a plug-in's block, in a process that has not loaded them yet
        if not isinstance(type_name, str) or (type_name not in CATALOGUE
                                              and type_name not in g.blocks):
            first = self.unknown.setdefault(repr(type_name), nid)
            # the advice once per missing type: a design using a plug-in ten times
            # would otherwise repeat the whole paragraph ten times
            self.fail(unknown_type_message(type_name) if first == nid else
                      f"unknown block type {type_name!r}, as for node {first!r}", nid)
            self.refused.add(nid)  # its wires are not reported again as dangling
            return
        params = node.get("params", {})
        if not isinstance(params, dict):
            self.fail("params must be an object", nid)
            return
        pos = node.get("pos")
        if pos is not None and not (
            isinstance(pos, list) and len(pos) == 2
            and all(isinstance(v, int | float) and not isinstance(v, bool) for v in pos)
        ):
            self.fail(f"pos {pos!r} must be [x, y]", nid)
            pos = None
        extra = {k: v for k, v in node.items() if k not in _NODE_KEYS}
        if FROZEN in extra and not isinstance(extra[FROZEN], bool):
            self.fail(f"{FROZEN} {extra[FROZEN]!r} must be true or false", nid)
            del extra[FROZEN]
        g.add_node(nid, type_name, params, pos, extra)

    def _read_edge(self, g: Graph, i: int, edge: Any) -> None:
        if not isinstance(edge, dict):
            self.fail(f"edges[{i}] is not an object")
            return
        src, dst, port = edge.get("from"), edge.get("to"), edge.get("port", 0)
        missing = [end for end in (src, dst) if not isinstance(end, str) or end not in g]
        if missing and all(end in self.refused for end in missing):
            return
        if missing:
            known = dst if isinstance(dst, str) and dst in g else (
                src if isinstance(src, str) and src in g else None)
            self.fail(f"edge {src!r} → {dst!r} points to no node {missing[0]!r}: remove the "
                      f"edge or add that node", known)
            return
        if isinstance(port, bool) or not isinstance(port, int) or port < 0:
            self.fail(f"edge {src} → {dst} has port {port!r}: use an integer ≥ 0", dst)
            return
        if g.nx.has_edge(src, dst, key=port):
            self.fail(f"edge {src} → {dst} (port {port}) appears twice: remove the copy", dst)
            return
        extra = {k: v for k, v in edge.items() if k not in _EDGE_KEYS}
        g.add_edge(src, dst, port, extra)
