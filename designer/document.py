"""The open design: one ``engine.Graph``, its undo history and its analysis.

Every user edit is one command on ``undo_stack``; commands change the graph only
through the private ``_add_node``/``_remove_node``/... methods below, which emit plain
signals, so the canvas, inspector and summary are projections that can never drift
from the model. The analysis is recomputed after every command: it is incremental and
takes milliseconds, and a synchronous report means a view never shows stale shapes.
"""

from __future__ import annotations

import copy
import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import networkx as nx
from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QUndoStack

from engine import Graph, Report, analyze
from engine.graph import FORMAT, VERSION
from engine.spec import BlockSpec

from .block_scope import ScopeMixin
from .commands import (
    AddNode,
    Connect,
    Disconnect,
    DocCommand,
    EdgeRecord,
    Layout,
    Macro,
    Move,
    NodeRecord,
    Paste,
    Pos,
    RemoveItems,
    ReplaceGraph,
    SetFrozen,
    SetParam,
    SetParams,
    SetTraining,
)

BELOW = 100.0  # vertical step between a block and the one added after it (as templates)
DUPLICATE_OFFSET = (40.0, 40.0)


class Document(QObject, ScopeMixin):
    """One design being edited. See the module docstring for the rules, and
    designer.block_scope for editing inside a block made of blocks."""

    node_added = Signal(str)
    node_removed = Signal(str)
    edge_added = Signal(str, str, int)
    edge_removed = Signal(str, str, int)
    params_changed = Signal(str)
    nodes_moved = Signal(list)
    analysis_changed = Signal()
    dirty_changed = Signal(bool)
    path_changed = Signal(str)
    training_changed = Signal()
    reset = Signal()
    scope_changed = Signal()  # another graph shown (a block's body, or back up)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.graph = Graph()
        self.report: Report = analyze(self.graph)
        self.undo_stack = QUndoStack(self)
        self.revision = 0  # bumped on every change; the autosave compares it
        self._path = ""
        self._recovered = False  # opened from a crash-recovery file: unsaved until saved
        self._seal = 0  # bumped by end_move(): mergeable edits never merge across it
        self._dirty = False
        self._init_scope()
        self.undo_stack.cleanChanged.connect(self._update_dirty)

    # ---- state ------------------------------------------------------------------------

    @property
    def path(self) -> str:
        """The file the design was opened from or saved to; "" when never saved."""
        return self._path

    @property
    def is_dirty(self) -> bool:
        return self._recovered or not self.undo_stack.isClean()

    def title(self) -> str:
        """File name (or the design's name when unsaved), with " *" when modified."""
        name = Path(self._path).name if self._path else (self.graph.name or "Untitled")
        return name + (" *" if self.is_dirty else "")

    def to_dict(self) -> dict[str, Any]:
        return self.graph.to_dict()

    # ---- edits: each pushes one undo command -----------------------------------------

    def add_block(self, type_name: str, pos: Iterable[float] | None = None,
                  params: Mapping[str, Any] | None = None) -> str:
        """Add a block of ``type_name``; returns its new id (``conv1``, ``relu2``...)."""
        rec = self._new_record(type_name, pos, params)
        self.undo_stack.push(AddNode(self, rec))
        return rec.id

    def add_block_after(self, type_name: str, after_id: str) -> str:
        """Add a block below ``after_id``, wired from it, as one undo step."""
        g = self.shown
        if after_id not in g:
            raise KeyError(f"no block {after_id!r}")
        x, y = g.pos_of(after_id) or (0.0, 0.0)
        rec = self._new_record(type_name, (x, y + BELOW), None)
        parts: list[DocCommand] = [AddNode(self, rec)]
        if g.spec(type_name).max_inputs != 0:
            parts.append(Connect(self, EdgeRecord(after_id, rec.id, 0)))
        self.undo_stack.push(Macro(self, f"Add {type_name} after {after_id}", parts))
        return rec.id

    def remove(self, node_ids: Iterable[str] = (),
               edges: Iterable[Iterable[Any]] = ()) -> bool:
        """Delete blocks (with their wires) and wires given as ``(src, dst[, port])``.

        Unknown ids and wires are skipped; returns False when nothing was deleted.
        """
        g = self.shown
        nodes = [n for n in dict.fromkeys(node_ids) if n in g]
        gone = set(nodes)
        keys: dict[tuple[str, str, int], None] = {}
        for n in nodes:
            for u, v, k in g.nx.in_edges(n, keys=True):
                keys[(u, v, k)] = None
            for u, v, k in g.nx.out_edges(n, keys=True):
                keys[(u, v, k)] = None
        for edge in edges:
            src, dst, *rest = edge
            key = (src, dst, int(rest[0]) if rest else 0)
            if g.nx.has_edge(*key) and src not in gone and dst not in gone:
                keys[key] = None
        if not nodes and not keys:
            return False
        self.undo_stack.push(RemoveItems(self, [self._node_record(n) for n in nodes],
                                         [self._edge_record(*k) for k in keys]))
        return True

    def connect(self, src: str, dst: str, port: int | None = None  # type: ignore[override]
                ) -> tuple[str, str, int] | None:
        """Wire ``src`` into ``dst``; returns ``(src, dst, port)`` or None when refused.

        ``port`` None (or negative, for signals that cannot carry None) takes port 0 of
        a single-input block and the lowest free port otherwise. A wire into an
        occupied slot replaces the old wire in the same undo step, as node editors do.
        Refused: a self-loop, a duplicate wire, a wire into a block that takes no
        input, and a wire that would close a cycle.
        """
        g = self.shown
        if src == dst or src not in g or dst not in g:
            return None
        if not _takes_inputs(g, dst):
            return None
        spec = g.spec(g.type_of(dst))
        if port is None or port < 0:
            if any(s == src for _, s in g.inputs_of(dst)):
                return None
            port = 0 if spec.max_inputs == 1 else g.free_port(dst)
        if g.nx.has_edge(src, dst, key=port) or nx.has_path(g.nx, dst, src):
            return None
        replaced = [self._edge_record(s, dst, p) for p, s in g.inputs_of(dst) if p == port]
        self.undo_stack.push(Connect(self, EdgeRecord(src, dst, port), replaced))
        return (src, dst, port)

    def disconnect(self, src: str, dst: str, port: int = 0  # type: ignore[override]
                   ) -> bool:
        if not self.shown.nx.has_edge(src, dst, key=port):
            return False
        self.undo_stack.push(Disconnect(self, self._edge_record(src, dst, port)))
        return True

    def rewire(self, src: str, dst: str, port: int, new_dst: str, new_port: int) -> bool:
        """Move the input end of a wire to another port as one undo step. A new place
        that :meth:`connect` refuses leaves the wire where it was."""
        if not self.shown.nx.has_edge(src, dst, key=port):
            return False
        trial = self.shown.copy()
        trial.remove_edge(src, dst, port)
        if (new_dst, new_port) == (dst, port) or new_dst not in trial or (
                not _takes_inputs(trial, new_dst)
                or trial.nx.has_edge(src, new_dst, key=new_port)
                or nx.has_path(trial.nx, new_dst, src) or src == new_dst):
            return False
        self.undo_stack.beginMacro(f"Move wire {src} → {new_dst}")
        try:
            self.disconnect(src, dst, port)
            self.connect(src, new_dst, new_port)
        finally:
            self.undo_stack.endMacro()
        return True

    def move(self, positions: Mapping[str, Iterable[float]]) -> bool:
        """Move blocks; the calls of one drag merge into one undo step until
        :meth:`end_move`. Returns False when nothing moved."""
        old, new = self._position_change(positions)
        if not new:
            return False
        self.undo_stack.push(Move(self, old, new, self._seal))
        return True

    def end_move(self, *_args: Any) -> None:
        """End the current drag (or spin-box burst): the next move or parameter change
        becomes a separate undo step. Call it on mouse release / editing finished."""
        self._seal += 1

    end_edit = end_move

    def apply_layout(self, positions: Mapping[str, Iterable[float]]) -> bool:
        """Move many blocks at once (auto layout) as one undo step."""
        old, new = self._position_change(positions)
        if not new:
            return False
        self.undo_stack.push(Layout(self, old, new))
        return True

    def set_param(self, node_id: str, name: str, value: Any) -> bool:
        """Set a parameter (None: back to the default, unless the parameter is nullable).

        Out-of-range values are kept and reported by the analysis on the block. Returns
        False when nothing changed.
        """
        g = self.shown
        if node_id not in g:
            return False
        old = copy.deepcopy(g.params_of(node_id))
        new = copy.deepcopy(old)
        block = _spec(g, g.type_of(node_id))
        spec = block.param_index.get(name) if block is not None else None
        if value is None and (spec is None or not spec.nullable):
            new.pop(name, None)
        else:
            new[name] = _plain(value)
        if _same(old, new):
            return False
        self.undo_stack.push(SetParam(self, node_id, name, old, new, self._seal))
        return True

    def set_params(self, node_id: str, changes: Mapping[str, Any], text: str) -> bool:
        """Set several parameters of one block as one undo step; False if nothing changed."""
        if node_id not in self.shown:
            return False
        old = copy.deepcopy(self.shown.params_of(node_id))
        new = {**copy.deepcopy(old), **{k: _plain(v) for k, v in changes.items()}}
        if _same(old, new):
            return False
        self.undo_stack.push(SetParams(self, node_id, old, new, text))
        return True

    def set_training(self, settings: Mapping[str, Any], remove: Iterable[str] = ()) -> bool:
        """Merge ``settings`` into the file's ``training`` object (keys Convas does not
        know are kept) and drop the keys in ``remove``, as an undoable, mergeable edit;
        False if nothing changed."""
        old = copy.deepcopy(self.graph.training)
        new = {**copy.deepcopy(old), **{k: _plain(v) for k, v in settings.items()}}
        for key in remove:
            new.pop(key, None)
        if _same(old, new):
            return False
        self.undo_stack.push(SetTraining(self, old, new, self._seal))
        return True

    def set_frozen(self, node_ids: Iterable[str], frozen: bool, text: str | None = None
                   ) -> bool:
        """Freeze (training keeps their weights as loaded) or unfreeze blocks as one
        undo step; unknown ids and blocks already so are skipped. False if none changed."""
        g = self.graph
        old = {n: g.is_frozen(n) for n in dict.fromkeys(node_ids)
               if n in g and g.is_frozen(n) != frozen}
        if not old:
            return False
        if text is None:
            text = ("Freeze " if frozen else "Unfreeze ") + (
                next(iter(old)) if len(old) == 1 else f"{len(old)} blocks")
        self.undo_stack.push(SetFrozen(self, old, frozen, text))
        return True

    def freeze_up_to(self, node_id: str) -> bool:
        """Freeze ``node_id`` and every block it depends on (from the Inputs down to it),
        the usual start of fine-tuning: the early layers keep their learned features."""
        if node_id not in self.graph:
            return False
        upstream = nx.ancestors(self.graph.nx, node_id) | {node_id}
        order = [n for n in self.graph.nodes if n in upstream]
        return self.set_frozen(order, True, f"Freeze up to {node_id}")

    def unfreeze_all(self) -> bool:
        return self.set_frozen(self.graph.frozen_nodes(), False, "Unfreeze all blocks")

    def replace_graph(self, graph: Graph, text: str) -> bool:
        """Replace the design by another version of it (a conversion of the whole
        design) as one undo step; False when nothing would change."""
        if _same(self.graph.to_dict(), graph.to_dict()):
            return False
        self.undo_stack.push(ReplaceGraph(self, self.graph, graph, text))
        return True

    def copy(self, node_ids: Iterable[str]) -> dict[str, Any]:
        """The given blocks and the wires among them, as a SPEC §1 graph dict, with the
        definitions of the blocks made of blocks they use (and of those these use), so
        the copy pastes into another design too."""
        from engine.block_library import definition_with_dependencies

        keep = set(node_ids)
        full = self.shown.to_dict()
        nodes = [n for n in full["nodes"] if n["id"] in keep]
        blocks: dict[str, Any] = {}
        for n in nodes:
            if n["type"] in self.graph.blocks and n["type"] not in blocks:
                blocks.update(definition_with_dependencies(self.graph.blocks, n["type"]))
        return {"format": FORMAT, "version": VERSION, "name": self.graph.name,
                **({"blocks": blocks} if blocks else {}), "nodes": nodes,
                "edges": [e for e in full["edges"] if e["from"] in keep and e["to"] in keep]}

    def paste(self, data: Mapping[str, Any], offset: Iterable[float] = DUPLICATE_OFFSET,
              text: str = "Paste") -> list[str]:
        """Add the blocks of ``data`` (from :meth:`copy`) with fresh ids, shifted by
        ``offset``, keeping the wires among them; returns the new ids in order.

        Raises ``engine.GraphFileError`` when ``data`` is not a readable graph.
        """
        source = Graph.from_dict({"format": FORMAT, "version": VERSION, **data})
        dx, dy = offset
        taken = set(self.shown.nodes)
        ids: dict[str, str] = {}
        nodes = []
        for n in source.nodes:
            rec = self._node_record(n, source)
            block = _spec(source, rec.type) or _spec(self.shown, rec.type)
            prefix = block.prefix(rec.params) if block is not None else rec.type.lower()
            ids[n] = _fresh_id(prefix, taken)
            pos = (rec.pos[0] + dx, rec.pos[1] + dy) if rec.pos is not None else None
            nodes.append(NodeRecord(ids[n], rec.type, rec.params, pos, rec.extra))
        if not nodes:
            return []
        edges = [EdgeRecord(ids[e.src], ids[e.dst], e.port,
                            copy.deepcopy(source.nx.edges[e.src, e.dst, e.port]["extra"]))
                 for e in source.edges()]
        # blocks made of blocks the design lacks come with the paste, in the same undo
        # step; one it has already, under the same name, is kept as the design has it
        missing = {n: d for n, d in (data.get("blocks") or {}).items()
                   if n not in self.graph.blocks}
        if not missing:
            self.undo_stack.push(Paste(self, nodes, edges, text))
            return list(ids.values())
        whole = self.graph.to_dict()
        whole.setdefault("blocks", {}).update(copy.deepcopy(missing))
        self.undo_stack.beginMacro(text)
        try:
            self.replace_graph(Graph.from_dict(whole), f"{text}: bring in "
                               f"{', '.join(missing)}")
            self.undo_stack.push(Paste(self, nodes, edges, text))
        finally:
            self.undo_stack.endMacro()
        return list(ids.values())

    def duplicate(self, node_ids: Iterable[str]) -> list[str]:
        return self.paste(self.copy(node_ids), DUPLICATE_OFFSET, "Duplicate")

    def undo(self) -> None:
        self.undo_stack.undo()

    def redo(self) -> None:
        self.undo_stack.redo()

    # ---- files ------------------------------------------------------------------------

    def new(self) -> None:
        self._reset(Graph(), "")

    def new_from(self, graph: Graph | Mapping[str, Any], name: str | None = None) -> None:
        """Start an unsaved design from a graph (a template); the document owns it."""
        g = graph if isinstance(graph, Graph) else Graph.from_dict(graph)
        if name is not None:
            g.name = name
        self._reset(g, "")

    def open(self, path: str | os.PathLike) -> None:
        """Open a file; ``engine.GraphFileError`` leaves the document as it was."""
        graph = Graph.load(path)
        self._reset(graph, os.path.abspath(path))

    def open_recovered(self, graph: Graph, original_path: str = "") -> None:
        """Show a crash-recovery copy: modified (it was never saved) under its old path."""
        self._reset(graph, original_path, recovered=True)

    def save(self, path: str | os.PathLike | None = None) -> None:
        """Save atomically (to ``path`` or the current file); OSError leaves all as is."""
        target = os.path.abspath(path) if path is not None else self._path
        if not target:
            raise ValueError("the design has no file yet: give a path to save it to")
        self.graph.save(target)
        self._recovered = False
        self.undo_stack.setClean()
        self._set_path(target)
        self._update_dirty()

    # ---- model changes: only commands call these -----------------------------------

    def _add_node(self, rec: NodeRecord) -> None:
        self._target().add_node(rec.id, rec.type, copy.deepcopy(rec.params), rec.pos,
                                copy.deepcopy(rec.extra))
        if self._visible():
            self.node_added.emit(rec.id)

    def _remove_node(self, node_id: str) -> None:
        g = self._target()
        for u, v, k in list(g.nx.in_edges(node_id, keys=True)) + list(
                g.nx.out_edges(node_id, keys=True)):
            self._remove_edge(u, v, k)
        g.remove_node(node_id)
        if self._visible():
            self.node_removed.emit(node_id)

    def _add_edge(self, edge: EdgeRecord) -> None:
        self._target().add_edge(edge.src, edge.dst, edge.port, copy.deepcopy(edge.extra))
        if self._visible():
            self.edge_added.emit(edge.src, edge.dst, edge.port)

    def _remove_edge(self, src: str, dst: str, port: int) -> None:
        self._target().remove_edge(src, dst, port)
        if self._visible():
            self.edge_removed.emit(src, dst, port)

    def _set_params(self, node_id: str, params: dict[str, Any]) -> None:
        self._target().set_params(node_id, copy.deepcopy(params))
        if self._visible():
            self.params_changed.emit(node_id)

    def _set_frozen(self, node_id: str, frozen: bool) -> None:
        self._target().set_frozen(node_id, frozen)
        if self._visible():
            self.params_changed.emit(node_id)

    def _set_training(self, settings: dict[str, Any]) -> None:
        self.graph.training = copy.deepcopy(settings)
        self.training_changed.emit()

    def _set_positions(self, positions: Mapping[str, Pos]) -> None:
        g = self._target()
        for n, pos in positions.items():
            g.set_pos(n, pos)
        if self._visible():
            self.nodes_moved.emit(list(positions))

    def _replace_graph(self, target: Graph) -> None:
        """Make the graph an exact copy of ``target``: the blocks and wires that differ
        go and come back through the methods above (the views follow their signals),
        then a copy of ``target`` is kept so that orders are exactly its own."""
        want = {n: self._node_record(n, target) for n in target.nodes}
        for n in self.graph.nodes:
            if want.get(n) != self._node_record(n):
                self._remove_node(n)
        wires = {(e.src, e.dst, e.port): EdgeRecord(
            e.src, e.dst, e.port, copy.deepcopy(target.nx.edges[e.src, e.dst, e.port]["extra"]))
            for e in target.edges()}
        for e in self.graph.edges():
            if wires.get((e.src, e.dst, e.port)) != self._edge_record(e.src, e.dst, e.port):
                self._remove_edge(e.src, e.dst, e.port)
        for name, block in target.blocks.items():  # a block a Group made: known first
            self.graph.blocks.setdefault(name, block)
        for n, rec in want.items():
            if n not in self.graph:
                self._add_node(rec)
        for key, edge in wires.items():
            if not self.graph.nx.has_edge(*key):
                self._add_edge(edge)
        kept = target.copy()
        kept.name = self.graph.name   # a rename (Save As) is no part of the conversion
        self.graph = kept

    def _finish(self, analysis: bool, scope: str | None = None) -> None:
        """End of one command's redo or undo: re-analyse and tell the views. An edit
        inside a block's body tells the block (its ports and doc may have changed), so
        the analysis looks at every instance again."""
        self.revision += 1
        if analysis:
            if scope is not None and scope in self.graph.blocks:
                self.graph.blocks[scope].changed()
            self.report = analyze(self.graph)
        self._check_scope()
        if analysis:
            self.analysis_changed.emit()

    # ---- helpers ----------------------------------------------------------------------

    def _reset(self, graph: Graph, path: str, recovered: bool = False) -> None:
        self.graph = graph
        self._reset_scope()
        self.report = analyze(graph)
        self._recovered = recovered
        self.undo_stack.clear()
        self.undo_stack.setClean()
        self.revision += 1
        self.reset.emit()
        self.analysis_changed.emit()
        self._set_path(path)
        self._update_dirty()

    def _set_path(self, path: str) -> None:
        if path != self._path:
            self._path = path
            self.path_changed.emit(path)

    def _update_dirty(self, *_args: Any) -> None:
        dirty = self.is_dirty
        if dirty != self._dirty:
            self._dirty = dirty
            self.dirty_changed.emit(dirty)

    def _new_record(self, type_name: str, pos: Iterable[float] | None,
                    params: Mapping[str, Any] | None) -> NodeRecord:
        block = _spec(self.shown, type_name)
        if block is None:
            raise KeyError(f"unknown block type {type_name!r}")
        plain = {k: _plain(v) for k, v in (params or {}).items()}
        node_id = self.shown.new_id(block.prefix(plain))
        return NodeRecord(node_id, type_name, plain, _pos(pos))

    def _node_record(self, node_id: str, graph: Graph | None = None) -> NodeRecord:
        data = (graph or self._target()).nx.nodes[node_id]
        return NodeRecord(node_id, data["type"], copy.deepcopy(data["params"]),
                          data["pos"], copy.deepcopy(data["extra"]))

    def _edge_record(self, src: str, dst: str, port: int) -> EdgeRecord:
        extra = self._target().nx.edges[src, dst, port]["extra"]
        return EdgeRecord(src, dst, port, copy.deepcopy(extra))

    def _position_change(self, positions: Mapping[str, Iterable[float]]
                         ) -> tuple[dict[str, Pos], dict[str, Pos]]:
        g = self.shown
        new = {n: _pos(p) for n, p in positions.items() if n in g}
        if all(g.pos_of(n) == p for n, p in new.items()):
            return {}, {}
        return {n: g.pos_of(n) for n in new}, new


def _spec(graph: Graph, type_name: str) -> BlockSpec | None:
    """The block's spec: the catalogue's, or one of the design's own blocks made of
    blocks (SPEC §9); None for a type nobody defines (a plug-in that is not loaded)."""
    try:
        return graph.spec(type_name)
    except KeyError:
        return None


def _takes_inputs(graph: Graph, node_id: str) -> bool:
    spec = _spec(graph, graph.type_of(node_id))
    return spec is not None and spec.max_inputs != 0


def _fresh_id(prefix: str, taken: set[str]) -> str:
    i = 1
    while f"{prefix}{i}" in taken:
        i += 1
    taken.add(f"{prefix}{i}")
    return f"{prefix}{i}"


def _pos(pos: Iterable[float] | None) -> Pos:
    if pos is None:
        return None
    x, y = pos
    return (float(x), float(y))


def _plain(value: Any) -> Any:
    """A JSON value as a file would hold it (tuples become lists), so that an edit, a
    save and a load give equal graphs. Anything JSON cannot hold is refused."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, dict) and all(isinstance(k, str) for k in value):
        return {k: _plain(v) for k, v in value.items()}  # dataset_options, for one
    raise TypeError(f"{value!r} is not a value a graph file can hold")


def _same(a: Any, b: Any) -> bool:
    """Equal as JSON: ``True`` and ``1`` differ (a bool parameter set to 1 is an error)."""
    return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)
