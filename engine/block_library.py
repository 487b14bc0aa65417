"""The personal block library: blocks made of blocks (SPEC §9) kept for every design.

"Save block to library" writes one of a design's blocks to the user's data folder, one
file per block (``NAME.convas-block.json``) holding its definition and the definitions
of the blocks it uses, so a library file is complete on its own. Using a library block
copies those definitions into the design's ``"blocks"``: a design file never depends on
the library, and opens the same on a machine whose library is empty.

A library file is checked exactly as a design's ``"blocks"`` (through
``engine.user_blocks.read_blocks``, by reading it as a graph with no nodes); a file
that fails is left out of the library and reported, never fatal.
"""

from __future__ import annotations

import copy
import json
import os
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from .errors import GraphError
from .files import write_text_atomically
from .graph import FORMAT as GRAPH_FORMAT
from .graph import VERSION as GRAPH_VERSION
from .graph import Graph
from .spec import BlockSpec
from .user_blocks import UserBlock, definition_problems

ENV_VAR = "CONVAS_LIBRARY"
SUFFIX = ".convas-block.json"
FORMAT = "convas.block"
VERSION = 1
CATEGORY = "My blocks"

Conflict = Literal["replace", "keep"]


class LibraryError(ValueError):
    """A block that cannot be saved to, read from or taken out of the library; the
    message says what to do."""


@dataclass(frozen=True)
class LibraryBlock:
    """One library file, checked: ``definitions`` holds the block first, then every
    block it uses (directly or not), as a design's ``"blocks"`` writes them."""

    name: str
    path: Path
    definitions: dict[str, dict[str, Any]]
    spec: BlockSpec = field(compare=False)

    @property
    def definition(self) -> dict[str, Any]:
        return self.definitions[self.name]


@dataclass
class Library:
    """What the library folder holds: the readable blocks by name, and one message per
    file that was left out (which file, and why)."""

    blocks: dict[str, LibraryBlock] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)


# ---- where ---------------------------------------------------------------------------


def data_folder() -> Path:
    """Qt's AppDataLocation for the application "Convas" without Qt, so the library sits
    beside the editor's runs and recovery files (``$XDG_DATA_HOME/Convas/Convas`` on
    Linux, ``~/Library/Application Support/Convas/Convas`` on macOS)."""
    home = Path.home()
    if sys.platform == "win32":
        base = Path(os.environ.get("APPDATA") or home / "AppData" / "Roaming")
    elif sys.platform == "darwin":
        base = home / "Library" / "Application Support"
    else:
        base = Path(os.environ.get("XDG_DATA_HOME") or home / ".local" / "share")
    return base / "Convas" / "Convas"


def library_folder() -> Path:
    """``$CONVAS_LIBRARY`` when set (tests, a shared team folder), else
    ``<data folder>/library``. It is created only when a block is saved."""
    env = os.environ.get(ENV_VAR, "").strip()
    return Path(env).expanduser() if env else data_folder() / "library"


def library_path(name: str, folder: str | os.PathLike | None = None) -> Path:
    return Path(folder if folder is not None else library_folder()) / f"{name}{SUFFIX}"


# ---- definitions -----------------------------------------------------------------------


def _as_dict(block: UserBlock | Mapping[str, Any]) -> dict[str, Any]:
    return block.to_dict() if isinstance(block, UserBlock) else copy.deepcopy(dict(block))


def _used_types(definition: Mapping[str, Any]) -> list[str]:
    nodes = definition.get("nodes", [])
    return [n["type"] for n in nodes if isinstance(n, dict) and isinstance(n.get("type"), str)]


def definition_with_dependencies(blocks: Mapping[str, UserBlock | Mapping[str, Any]],
                                 name: str) -> dict[str, dict[str, Any]]:
    """``name``'s definition and those of the blocks it uses, directly or not (first the
    block, then its dependencies in the order met): what a library file must hold to
    be complete. ``blocks`` is ``graph.blocks`` or a file's ``"blocks"`` object."""
    if name not in blocks:
        raise LibraryError(f"there is no block {name!r} in this design: pick one of "
                           f"{', '.join(blocks) or 'its blocks (it has none yet)'}")
    out: dict[str, dict[str, Any]] = {}
    todo = [name]
    while todo:
        n = todo.pop(0)
        if n in out:
            continue
        out[n] = _as_dict(blocks[n])
        todo += [t for t in _used_types(out[n]) if t in blocks and t not in out]
    return out


def _check(definitions: Mapping[str, Any], name: str) -> Graph:
    """``definitions`` read as a design's ``"blocks"`` (same checks, same messages);
    raises LibraryError when they do not read or ``name`` cannot be used."""
    if not isinstance(definitions, dict) or name not in definitions:
        raise LibraryError(f'"blocks" must be an object holding the definition of {name!r}')
    data = {"format": GRAPH_FORMAT, "version": GRAPH_VERSION, "name": name,
            "blocks": definitions, "nodes": [], "edges": []}
    try:
        g = Graph.from_dict(data)
    except GraphError as exc:
        raise LibraryError(str(exc)) from None
    problem = definition_problems(g.blocks).get(name)
    if problem is not None:
        raise LibraryError(problem)
    return g


def _entry(name: str, path: Path, definitions: Mapping[str, Any]) -> LibraryBlock:
    g = _check(definitions, name)
    kept = definition_with_dependencies(g.blocks, name)
    spec = replace(g.blocks[name].spec, category=CATEGORY, source=str(path))
    return LibraryBlock(name, path, kept, spec)


# ---- reading ---------------------------------------------------------------------------


def read_block_file(path: str | os.PathLike) -> LibraryBlock:
    """One library file, checked; LibraryError (naming the file) when it cannot be used."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise LibraryError(f"{path}: cannot be read ({exc})") from None
    except json.JSONDecodeError as exc:
        raise LibraryError(f"{path} is not valid JSON (line {exc.lineno}: {exc.msg}): fix "
                           f"it in a text editor or delete it") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise LibraryError(f"{path}: not a Convas library block (its format must be "
                           f"{FORMAT!r}): move it out of the library folder")
    version = data.get("version")
    if isinstance(version, bool) or not isinstance(version, int) or version > VERSION:
        raise LibraryError(f"{path}: version {version!r} is not one this Convas reads (up to "
                           f"{VERSION}): update Convas or save the block again")
    name = data.get("name")
    if not isinstance(name, str):
        raise LibraryError(f'{path}: "name" must say which of its blocks it holds')
    try:
        return _entry(name, path, data.get("blocks"))
    except LibraryError as exc:
        raise LibraryError(f"{path}: {exc}") from None


def read_library(folder: str | os.PathLike | None = None) -> Library:
    """Every block of the library folder (none when it does not exist yet), by name in
    alphabetical order; a file that cannot be used is reported and left out."""
    folder = Path(folder) if folder is not None else library_folder()
    library = Library()
    try:
        files = sorted(folder.glob(f"*{SUFFIX}"), key=lambda p: p.name.lower())
    except OSError as exc:
        library.problems.append(f"{folder}: cannot be read ({exc})")
        return library
    for path in files:
        try:
            entry = read_block_file(path)
        except LibraryError as exc:
            library.problems.append(str(exc))
            continue
        other = library.blocks.get(entry.name)
        if other is not None:  # the file named after the block wins, whatever the order
            if path.name == f"{entry.name}{SUFFIX}":
                library.blocks[entry.name], other, path = entry, entry, other.path
            library.problems.append(f"{path}: holds {entry.name!r}, which "
                                    f"{other.path.name} holds too: delete one of them")
            continue
        library.blocks[entry.name] = entry
    return library


def list_library(folder: str | os.PathLike | None = None) -> dict[str, LibraryBlock]:
    """The usable library blocks by name (see :func:`read_library` for the problems)."""
    return read_library(folder).blocks


# ---- writing ---------------------------------------------------------------------------


def save_to_library(graph: Graph, name: str, folder: str | os.PathLike | None = None,
                    overwrite: bool = True) -> Path:
    """Write ``graph``'s block ``name`` with the blocks it uses to the library; returns
    the file. A block that is wrong (it uses itself, an undeclared ``$name``…) is
    refused: the library is for blocks that work. ``overwrite=False`` refuses to
    replace a library block of the same name (ask the user first)."""
    definitions = definition_with_dependencies(graph.blocks, name)
    problem = definition_problems(graph.blocks).get(name)
    if problem is not None:
        raise LibraryError(f"{problem}; fix it before saving {name} to the library")
    path = library_path(name, folder)
    if not overwrite and path.exists():
        raise LibraryError(f"the library already has a block {name!r}: replace it, or "
                           f"rename the block first")
    _check(definitions, name)
    data = {"format": FORMAT, "version": VERSION, "name": name, "blocks": definitions}
    text = json.dumps(data, indent=2, ensure_ascii=False) + "\n"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_text_atomically(path, text)
    except OSError as exc:
        raise LibraryError(f"cannot write {path} ({exc.strerror or exc}): check that the "
                           f"folder is writable, or set {ENV_VAR} to another folder") from None
    return path


def remove_from_library(name: str, folder: str | os.PathLike | None = None) -> Path:
    """Delete the library's block ``name``; returns the file deleted."""
    entry = read_library(folder).blocks.get(name)
    path = entry.path if entry is not None else library_path(name, folder)
    try:
        path.unlink()
    except FileNotFoundError:
        raise LibraryError(f"the library has no block {name!r} (in {path.parent})") from None
    except OSError as exc:
        raise LibraryError(f"cannot delete {path} ({exc.strerror or exc})") from None
    return path


# ---- using a library block in a design -------------------------------------------------


def _normal(definitions: Mapping[str, Any]) -> dict[str, Any]:
    """Definitions as a design would write them after reading (defaults filled the same
    way), so two spellings of one definition compare equal."""
    data = {"format": GRAPH_FORMAT, "version": GRAPH_VERSION, "name": "", "blocks":
            copy.deepcopy(dict(definitions)), "nodes": [], "edges": []}
    try:
        return Graph.from_dict(data).to_dict().get("blocks", {})
    except GraphError:
        return copy.deepcopy(dict(definitions))


def conflicts(graph: Graph, entry: LibraryBlock) -> list[str]:
    """The blocks ``entry`` brings that ``graph`` defines differently, by name."""
    mine = _normal({n: graph.blocks[n].to_dict() for n in entry.definitions
                    if n in graph.blocks})
    theirs = _normal(entry.definitions)
    return [n for n in mine if mine[n] != theirs.get(n)]


def with_definitions(graph: Graph, entry: LibraryBlock, on_conflict: Conflict = "keep"
                     ) -> Graph:
    """A copy of ``graph`` holding ``entry``'s definitions: those the design lacks are
    added; one it has already is kept as it is when ``on_conflict`` is "keep" and
    replaced by the library's when "replace" (every instance in the design then follows
    the library's version)."""
    differing = set(conflicts(graph, entry))
    data = graph.to_dict()
    blocks = data.setdefault("blocks", {})
    for n, d in entry.definitions.items():
        if n not in blocks or (n in differing and on_conflict == "replace"):
            blocks[n] = copy.deepcopy(d)
    try:
        return Graph.from_dict(data)
    except GraphError as exc:
        raise LibraryError(f"{entry.name} from the library does not fit this design: "
                           f"{exc}") from None


def add_library_block(graph: Graph, entry: LibraryBlock, pos: Iterable[float] | None = None,
                      wire_from: str | None = None, on_conflict: Conflict = "keep"
                      ) -> tuple[Graph, str]:
    """:func:`with_definitions`, plus one new instance of ``entry`` (wired from
    ``wire_from`` when given); returns the new graph and the instance's id."""
    out = with_definitions(graph, entry, on_conflict)
    node = out.new_id(out.spec(entry.name).prefix({}))
    out.add_node(node, entry.name, {}, tuple(pos) if pos is not None else None)
    if wire_from is not None and wire_from in out and out.type_of(wire_from) != "Output":
        out.add_edge(wire_from, node, 0)
    return out, node
