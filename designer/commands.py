"""The undo commands of the editor: one class per kind of edit.

A command holds plain snapshots (records) of what it adds or removes and changes the
model only through the Document's private ``_add_node``/``_remove_edge``/... methods,
which emit the signals the views follow. That keeps undo exact (a command restores the
very params, ports and extra keys it took away) and keeps the views out of the
commands, as in Orange canvas's ``document/commands.py``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from PySide6.QtGui import QUndoCommand

if TYPE_CHECKING:
    from engine import Graph

    from .document import Document

Pos = tuple[float, float] | None

# Command ids for QUndoStack merging (any distinct non-negative ints).
MOVE_ID = 1
PARAM_ID = 2
TRAINING_ID = 3


@dataclass(frozen=True)
class NodeRecord:
    """Everything needed to put a block back exactly as it was."""

    id: str
    type: str
    params: dict[str, Any] = field(default_factory=dict)
    pos: Pos = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class EdgeRecord:
    """One wire, with any unknown keys it carried in the file."""

    src: str
    dst: str
    port: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> tuple[str, str, int]:
        return (self.src, self.dst, self.port)


class DocCommand(QUndoCommand):
    """Base: ``apply``/``revert`` change the model; the document then finishes the step
    (re-analysis, ``analysis_changed``, revision bump) once per command, not per part.

    ``scope`` is the block whose body the command was made in (None: the top design);
    the command always applies there, whatever the canvas shows (designer.block_scope).
    """

    changes_analysis = True
    top_level = False  # True: always acts on the top design (the whole file)

    def __init__(self, doc: Document, text: str) -> None:
        super().__init__(text)
        self.doc = doc
        self.scope: str | None = None if self.top_level else doc.shown_block

    def redo(self) -> None:
        with self.doc._applying_in(self.scope):
            self.apply()
        self.doc._finish(self.changes_analysis, self.scope)

    def undo(self) -> None:
        with self.doc._applying_in(self.scope):
            self.revert()
        self.doc._finish(self.changes_analysis, self.scope)

    def apply(self) -> None:
        raise NotImplementedError

    def revert(self) -> None:
        raise NotImplementedError


class Macro(DocCommand):
    """Several commands as one undo step (add-and-wire, replace a wire).

    The parts are plain Python children rather than Qt child commands so that the
    analysis runs once for the whole step.
    """

    def __init__(self, doc: Document, text: str, parts: Sequence[DocCommand]) -> None:
        super().__init__(doc, text)
        self.parts = list(parts)
        self.changes_analysis = any(p.changes_analysis for p in self.parts)

    def apply(self) -> None:
        for part in self.parts:
            part.apply()

    def revert(self) -> None:
        for part in reversed(self.parts):
            part.revert()


class AddItems(DocCommand):
    """Add blocks and the wires among them (a new block, a paste, a duplicate)."""

    def __init__(self, doc: Document, text: str, nodes: Sequence[NodeRecord],
                 edges: Sequence[EdgeRecord] = ()) -> None:
        super().__init__(doc, text)
        self.nodes, self.edges = list(nodes), list(edges)

    def apply(self) -> None:
        for rec in self.nodes:
            self.doc._add_node(rec)
        for edge in self.edges:
            self.doc._add_edge(edge)

    def revert(self) -> None:
        for edge in reversed(self.edges):
            self.doc._remove_edge(*edge.key)
        for rec in reversed(self.nodes):
            self.doc._remove_node(rec.id)


class AddNode(AddItems):
    def __init__(self, doc: Document, node: NodeRecord) -> None:
        super().__init__(doc, f"Add {node.type}", [node])


class Paste(AddItems):
    def __init__(self, doc: Document, nodes: Sequence[NodeRecord],
                 edges: Sequence[EdgeRecord], text: str = "Paste") -> None:
        super().__init__(doc, f"{text} {_count(len(nodes), 'block')}", nodes, edges)


class RemoveItems(DocCommand):
    """Delete blocks (with every wire touching them) and wires; undo puts all back.

    ``edges`` must already include the wires of the removed blocks, snapshotted with
    their ports and extra keys, so that undo is exact.
    """

    def __init__(self, doc: Document, nodes: Sequence[NodeRecord],
                 edges: Sequence[EdgeRecord]) -> None:
        parts = [_count(len(nodes), "block")] if nodes else []
        if len(edges) and not nodes:
            parts.append(_count(len(edges), "wire"))
        super().__init__(doc, "Delete " + " and ".join(parts))
        self.nodes, self.edges = list(nodes), list(edges)

    def apply(self) -> None:
        for edge in self.edges:
            self.doc._remove_edge(*edge.key)
        for rec in self.nodes:
            self.doc._remove_node(rec.id)

    def revert(self) -> None:
        for rec in self.nodes:
            self.doc._add_node(rec)
        for edge in self.edges:
            self.doc._add_edge(edge)


class Connect(DocCommand):
    """Add a wire, taking out the wires it replaces in an occupied input slot."""

    def __init__(self, doc: Document, edge: EdgeRecord,
                 replaced: Sequence[EdgeRecord] = ()) -> None:
        super().__init__(doc, f"Connect {edge.src} → {edge.dst}")
        self.edge, self.replaced = edge, list(replaced)

    def apply(self) -> None:
        for old in self.replaced:
            self.doc._remove_edge(*old.key)
        self.doc._add_edge(self.edge)

    def revert(self) -> None:
        self.doc._remove_edge(*self.edge.key)
        for old in self.replaced:
            self.doc._add_edge(old)


class Disconnect(DocCommand):
    def __init__(self, doc: Document, edge: EdgeRecord) -> None:
        super().__init__(doc, f"Disconnect {edge.src} → {edge.dst}")
        self.edge = edge

    def apply(self) -> None:
        self.doc._remove_edge(*self.edge.key)

    def revert(self) -> None:
        self.doc._add_edge(self.edge)


class Move(DocCommand):
    """Move blocks. The many small moves of one drag merge into one undo step: same
    set of blocks and no ``Document.end_move()`` (``seal``) in between."""

    changes_analysis = False

    def __init__(self, doc: Document, old: dict[str, Pos], new: dict[str, Pos],
                 seal: int, text: str | None = None) -> None:
        super().__init__(doc, text or f"Move {_count(len(new), 'block')}")
        self.old, self.new, self.seal = dict(old), dict(new), seal

    def id(self) -> int:
        return MOVE_ID

    def mergeWith(self, other: QUndoCommand) -> bool:
        if (not isinstance(other, Move) or other.seal != self.seal
                or other.scope != self.scope or other.new.keys() != self.new.keys()):
            return False
        self.new = dict(other.new)
        return True

    def apply(self) -> None:
        self.doc._set_positions(self.new)

    def revert(self) -> None:
        self.doc._set_positions(self.old)


class Layout(Move):
    """A whole automatic layout: one step that never merges with a drag."""

    def __init__(self, doc: Document, old: dict[str, Pos], new: dict[str, Pos]) -> None:
        super().__init__(doc, old, new, seal=-1, text="Arrange blocks")

    def id(self) -> int:
        return -1


class SetParam(DocCommand):
    """Change one parameter. Consecutive changes of the same parameter of the same
    block (typing in a spin box) merge into one step until the next seal."""

    def __init__(self, doc: Document, node: str, name: str, old: dict[str, Any],
                 new: dict[str, Any], seal: int) -> None:
        super().__init__(doc, f"Change {node}.{name}")
        self.node, self.name, self.seal = node, name, seal
        self.old, self.new = old, new

    def id(self) -> int:
        return PARAM_ID

    def mergeWith(self, other: QUndoCommand) -> bool:
        if (not isinstance(other, SetParam) or other.seal != self.seal
                or (other.scope, other.node, other.name) != (self.scope, self.node, self.name)):
            return False
        self.new = other.new
        return True

    def apply(self) -> None:
        self.doc._set_params(self.node, self.new)

    def revert(self) -> None:
        self.doc._set_params(self.node, self.old)


class SetParams(DocCommand):
    """Change several parameters of one block in one step (an Input fitted to a dataset:
    channels, height and width together); never merges."""

    def __init__(self, doc: Document, node: str, old: dict[str, Any], new: dict[str, Any],
                 text: str) -> None:
        super().__init__(doc, text)
        self.node, self.old, self.new = node, old, new

    def apply(self) -> None:
        self.doc._set_params(self.node, self.new)

    def revert(self) -> None:
        self.doc._set_params(self.node, self.old)


class SetTraining(DocCommand):
    """Change the design's training settings (the file's ``training`` object). Changes
    made one after another in the training panel merge into one step until a seal."""

    changes_analysis = False
    top_level = True

    def __init__(self, doc: Document, old: dict[str, Any], new: dict[str, Any],
                 seal: int) -> None:
        changed = sorted(k for k in new.keys() | old.keys() if new.get(k) != old.get(k))
        super().__init__(doc, "Change training " + ", ".join(changed[:3])
                         + ("…" if len(changed) > 3 else ""))
        self.old, self.new, self.seal = old, new, seal

    def id(self) -> int:
        return TRAINING_ID

    def mergeWith(self, other: QUndoCommand) -> bool:
        if not isinstance(other, SetTraining) or other.seal != self.seal:
            return False
        self.new = other.new
        self.setText(other.text())
        return True

    def apply(self) -> None:
        self.doc._set_training(self.new)

    def revert(self) -> None:
        self.doc._set_training(self.old)


class SetFrozen(DocCommand):
    """Freeze or unfreeze blocks (the node key ``"frozen"``, SPEC §8) in one step that
    never merges: each toggle, "Freeze up to here" or "Unfreeze all" is undone alone.
    The trainable count changes, so the analysis runs again."""

    top_level = True

    def __init__(self, doc: Document, old: dict[str, bool], frozen: bool, text: str) -> None:
        super().__init__(doc, text)
        self.old, self.frozen = dict(old), frozen

    def apply(self) -> None:
        for node in self.old:
            self.doc._set_frozen(node, self.frozen)

    def revert(self) -> None:
        for node, was in self.old.items():
            self.doc._set_frozen(node, was)


class ReplaceGraph(DocCommand):
    """Replace the design by a converted version of it ("make fully convolutional"):
    only the blocks and wires that differ are taken out and put in (so the views redraw
    those alone), and undo gives back the very graph, node and wire order included.
    Group and Ungroup are such steps too, inside a block's body as well: the whole
    file is replaced (designer.block_scope)."""

    top_level = True

    def __init__(self, doc: Document, old: Graph, new: Graph, text: str) -> None:
        super().__init__(doc, text)
        self.old, self.new = old.copy(), new.copy()

    def apply(self) -> None:
        self.doc._replace_graph(self.new)

    def revert(self) -> None:
        self.doc._replace_graph(self.old)


def _count(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")
