"""Editing inside a block made of blocks (SPEC §9): the document's *scope*, and Group and
Ungroup as single undo steps. :class:`ScopeMixin` is part of ``Document``.

The rules the undo history keeps:

- ``Document.graph`` is always the whole file (the top design): saving, training,
  exporting and the analysis use it, whatever the canvas shows.
- ``Document.scope`` is the path of instance ids opened from the top, e.g.
  ``("stage1", "convrelu1")``; ``Document.shown`` is the graph the canvas shows: the top
  design, or the body of the last instance's block. An instance's body is its block's
  DEFINITION, so an edit there changes ``graph.blocks[name].body`` and every instance
  of the block follows; the badges are those of the instance that was opened (its
  arguments and input shapes, from the analysis' per-instance ``inner`` results).
- Each undo command records the block it was made in (``DocCommand.scope``: a block
  name, or None for the top design) and always applies to that block's body, whether
  or not it is the one shown: Ctrl+Z after going back up undoes the inner edit, and the
  design's analysis then shows the restored values.
- The view signals (``node_added``, ``params_changed``, …) are emitted only for edits of
  the graph shown. When the shown graph is replaced, or its path no longer exists (the
  instance was removed, or an undo took its block away), the scope is cut back to what
  still exists and ``scope_changed`` tells the views to rebuild.
- Going in or out is no edit: it is not on the undo stack and leaves the design
  unmodified, but it seals merging edits (typing before and after are two steps).
- Group and Ungroup (``engine.grouping``) transform the whole file and are pushed as
  one ``ReplaceGraph`` step of the top design, exact under undo and redo. Inside a body
  they transform that body, and a new block joins the file's blocks.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from engine import Graph, GraphFileError, grouping
from engine.user_blocks import arg_name, used_args

if TYPE_CHECKING:
    from PySide6.QtCore import SignalInstance

_SHOWN = object()  # "no command running": edits are built against the graph shown


class ScopeMixin:
    """The scope part of ``Document`` (which provides ``graph``, ``report``,
    ``undo_stack``, ``scope_changed`` and ``end_edit``)."""

    graph: Graph
    scope_changed: SignalInstance

    def _init_scope(self) -> None:
        self._scope: tuple[str, ...] = ()
        self._shown_name: str | None = None   # the block whose body is shown
        self._shown_graph: Graph | None = None
        self._applying: Any = _SHOWN

    # ---- where we are ----------------------------------------------------------------

    @property
    def scope(self) -> tuple[str, ...]:
        """The instance ids opened from the top design, outermost first."""
        return self._scope

    @property
    def shown_block(self) -> str | None:
        """The block whose body the canvas shows; None for the top design."""
        return self._shown_name

    @property
    def shown(self) -> Graph:
        """The graph the canvas shows and the edits act on: the design or a body."""
        return self.graph_of(self._shown_name)

    def graph_of(self, block: str | None) -> Graph:
        """The top design (None) or the body of the file's block ``block``."""
        return self.graph if block is None else self.graph.blocks[block].body

    def scope_blocks(self) -> list[str]:
        """The block names along the scope (the breadcrumb after the design)."""
        names, g = [], self.graph
        for inst in self._scope:
            names.append(g.type_of(inst))
            g = self.graph.blocks[names[-1]].body
        return names

    def shown_infos(self) -> Mapping[str, Any]:
        """The analysis of the graph shown: the report's nodes, or the inner results of
        the instance opened (empty when the instance could not be analysed)."""
        infos: Mapping[str, Any] = self.report.nodes  # type: ignore[attr-defined]
        for inst in self._scope:
            info = infos.get(inst)
            infos = info.inner if info is not None and info.inner is not None else {}
        return infos

    def instances_of(self, block: str) -> int:
        """How many instances of ``block`` the file has (top design and bodies)."""
        graphs = [self.graph, *(b.body for b in self.graph.blocks.values())]
        return sum(1 for g in graphs for n in g.nodes if g.type_of(n) == block)

    def can_enter(self, node_id: str) -> bool:
        g = self.shown
        return node_id in g and g.type_of(node_id) in self.graph.blocks

    # ---- going in and out ------------------------------------------------------------

    def enter(self, node_id: str) -> bool:
        """Show the body of the instance ``node_id`` of the graph shown; False when it is
        not an instance of one of the file's blocks."""
        if not self.can_enter(node_id):
            return False
        self._set_scope((*self._scope, node_id))
        return True

    def leave(self, depth: int | None = None) -> bool:
        """Go up one level (``depth`` None), or back to the first ``depth`` entries of
        the scope (0: the top design). False when nothing changed."""
        depth = len(self._scope) - 1 if depth is None else depth
        if depth < 0 or depth >= len(self._scope):
            return False
        self._set_scope(self._scope[:depth])
        return True

    def _set_scope(self, scope: tuple[str, ...]) -> None:
        self.end_edit()  # type: ignore[attr-defined]
        self._scope = scope
        self._shown_name = self.scope_blocks()[-1] if scope else None
        self._shown_graph = self.shown
        self.scope_changed.emit()

    def _valid_depth(self) -> int:
        g, depth = self.graph, 0
        for inst in self._scope:
            if inst not in g or g.type_of(inst) not in self.graph.blocks:
                break
            g = self.graph.blocks[g.type_of(inst)].body
            depth += 1
        return depth

    def _check_scope(self) -> None:
        """After a command: cut the scope back to what exists, and have the views
        rebuild when the shown graph is another object (a replaced design)."""
        if not self._scope:
            return
        depth = self._valid_depth()
        if depth != len(self._scope):
            self._set_scope(self._scope[:depth])
        elif self.shown is not self._shown_graph:
            self._set_scope(self._scope)

    def _reset_scope(self) -> None:
        self._scope, self._shown_name, self._shown_graph = (), None, None

    # ---- commands' target ----------------------------------------------------------------

    @contextmanager
    def _applying_in(self, block: str | None) -> Iterator[None]:
        """While a command runs: the model methods act on ``block``'s graph."""
        outer, self._applying = self._applying, block
        try:
            yield
        finally:
            self._applying = outer

    def _target(self) -> Graph:
        """The graph a model change acts on: the running command's, else the shown one."""
        if self._applying is _SHOWN:
            return self.shown
        return self.graph_of(self._applying)

    def _visible(self) -> bool:
        """Whether the running command changes the graph shown (views follow it)."""
        return self._applying is _SHOWN or self._applying == self._shown_name

    # ---- Group and Ungroup -----------------------------------------------------------

    def group(self, node_ids: Iterable[str], name: str,
              arguments: Mapping[str, Any] | None = None) -> str:
        """Replace the blocks ``node_ids`` of the graph shown by one instance of a new
        block ``name`` (one undo step); returns the instance's id. Raises ValueError
        with the engine's message when the selection cannot be one block."""
        ids = list(node_ids)
        block = self._shown_name
        for arg, targets in (arguments or {}).items():
            for node, param in [targets] if isinstance(targets, tuple) else targets:
                value = self.shown.params_of(node).get(param) if node in self.shown else None
                if arg_name(value) is not None:
                    raise ValueError(f"argument {arg}: {node}.{param} is {value}, an argument "
                                     f"of {block} already: leave it as it is")
        if block is None:
            new, instance = grouping.group(self.graph, ids, name, arguments)
        else:
            body, instance = grouping.group(self.graph_of(block), ids, name, arguments)
            definition = body.blocks[name].to_dict()
            # "$width" of the outer block inside the selection: the new block declares
            # width too, and its instance passes the outer block's $width on
            outer = self.graph.blocks[block].declarations
            for arg in sorted({a for n in ids for _, a in used_args(self.shown.params_of(n))
                               if a in outer}):
                if arg in definition["params"]:
                    raise ValueError(f"argument {arg}: {block} has an argument of that name "
                                     f"used by the selection: choose another name")
                definition["params"][arg] = copy.deepcopy(outer[arg])
                body.set_param(instance, arg, f"${arg}")
            new = _with_body(self.graph, block, body, (name, definition))
        self._push_whole(new, f"Group {len(ids)} blocks as {name}")
        return instance

    def ungroup(self, instance_id: str) -> list[str]:
        """Put the body of the instance ``instance_id`` of the graph shown in its place
        (one undo step); returns the ids of the blocks put in. ValueError when it is
        no instance."""
        shown = self.shown
        if instance_id not in shown:
            raise ValueError(f"no block {instance_id!r} here")
        block = self._shown_name
        before = set(shown.nodes) - {instance_id}
        body = grouping.ungroup(shown, instance_id)
        new = body if block is None else _with_body(self.graph, block, body)
        added = [n for n in body.nodes if n not in before]
        self._push_whole(new, f"Ungroup {instance_id}")
        return added

    def _push_whole(self, new: Graph, text: str) -> None:
        from .commands import ReplaceGraph

        self.undo_stack.push(ReplaceGraph(self, self.graph, new, text))  # type: ignore


def _with_body(top: Graph, block: str, body: Graph,
               added: tuple[str, dict] | None = None) -> Graph:
    """A copy of the file ``top`` whose block ``block`` has ``body``'s nodes and wires,
    and, when given, one more block definition ``(name, definition)``."""
    data = top.to_dict()
    nodes, edges = body.nodes_and_edges()
    data["blocks"][block]["nodes"] = nodes
    data["blocks"][block]["edges"] = edges
    if added is not None:
        data["blocks"][added[0]] = added[1]
    try:
        return Graph.from_dict(data)
    except GraphFileError as exc:  # a definition the file could not hold: say why
        raise ValueError(str(exc)) from exc
