"""The source a ``.py`` export copies from plug-in files.

The exported file must run without Convas and without the plug-in folder, so it
carries each plug-in function that the design uses, without its ``@block``
decorator, together with what that function needs from its file: the helpers,
classes and constants it refers to (and theirs), and the imports that bind the names
they use. Convas's own imports (``engine.…``) are left out: only the decorator used
them. Read from the file's text as it was loaded, with ``ast``; nothing is executed.
"""

from __future__ import annotations

import ast
from collections.abc import Callable, Iterable
from typing import Any

from ..blocks import CATALOGUE
from . import PluginError, file_source

_DEFS = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)


def carried_source(functions: Iterable[Callable[..., Any]]) -> tuple[list[str], list[str]]:
    """(import lines, top-level definitions) that define ``functions`` as plain Python.

    Raises PluginError when a source is missing or two plug-in files define the same
    name differently (the file could define only one of them).
    """
    imports: list[str] = []
    defs: dict[str, tuple[str, str]] = {}  # name → (source, file)
    for fn in dict.fromkeys(functions):
        name = fn.__name__
        spec = CATALOGUE.get(name)
        text = file_source(spec.source) if spec is not None else None
        if text is None:
            raise PluginError(f"the source of the plug-in block {name} is not available: "
                              f"load it from a plug-in file")
        file_imports, file_defs = _needed(text, name)
        for line in file_imports:
            if line not in imports:
                imports.append(line)
        for def_name, source in file_defs:
            if def_name in defs and defs[def_name][0] != source:
                raise PluginError(f"the plug-in files {defs[def_name][1]} and {spec.source} both "
                                  f"define {def_name}, differently: rename one of them")
            defs.setdefault(def_name, (source, spec.source))
    return imports, [source for source, _ in defs.values()]


def _needed(text: str, function: str) -> tuple[list[str], list[tuple[str, str]]]:
    lines = text.splitlines()
    tree = ast.parse(text)
    ours = _convas_names(tree)
    defs: dict[str, ast.stmt] = {}
    binders: dict[str, ast.stmt] = {}
    for node in tree.body:
        if isinstance(node, _DEFS):
            defs[node.name] = node
        elif isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                for n in ast.walk(target):
                    if isinstance(n, ast.Name):
                        defs[n.id] = node
        elif isinstance(node, ast.Import | ast.ImportFrom) and not _is_ours(node):
            for alias in node.names:
                binders[(alias.asname or alias.name).split(".")[0]] = node
    keep: set[int] = set()
    wanted = [function]
    seen: set[str] = set()
    while wanted:
        name = wanted.pop()
        if name in seen:
            continue
        seen.add(name)
        node = defs.get(name) or binders.get(name)
        if node is None:
            continue  # a builtin or a local name
        keep.add(id(node))
        wanted += [n.id for part in _parts(node, ours) for n in ast.walk(part)
                   if isinstance(n, ast.Name)]
    imports = [ast.get_source_segment(text, node) for node in tree.body
               if id(node) in keep and isinstance(node, ast.Import | ast.ImportFrom)]
    kept = []
    for node in tree.body:
        if id(node) in keep and not isinstance(node, ast.Import | ast.ImportFrom):
            first = node.lineno
            if isinstance(node, _DEFS) and not _stripped(node, ours):
                first = min([d.lineno for d in node.decorator_list] + [first])
            name = node.name if isinstance(node, _DEFS) else ast.unparse(node).split("=")[0]
            kept.append((name.strip(), "\n".join(lines[first - 1:node.end_lineno])))
    return imports, kept


def _convas_names(tree: ast.Module) -> set[str]:
    """Names the file binds from Convas (``block``, ``Param``, ``plugins``)."""
    return {(a.asname or a.name).split(".")[0] for node in tree.body
            if isinstance(node, ast.Import | ast.ImportFrom) and _is_ours(node)
            for a in node.names}


def _is_ours(node: ast.Import | ast.ImportFrom) -> bool:
    if isinstance(node, ast.ImportFrom):
        return node.level == 0 and (node.module or "").split(".")[0] == "engine" \
            or node.module == "__future__"
    return any(a.name.split(".")[0] == "engine" for a in node.names)


def _stripped(node: ast.stmt, ours: set[str]) -> bool:
    """A definition decorated by Convas (``@block``): copied without its decorators."""
    return isinstance(node, _DEFS) and any(_root(d) in ours for d in node.decorator_list)


def _root(expr: ast.expr) -> str | None:
    while isinstance(expr, ast.Call | ast.Attribute):
        expr = expr.func if isinstance(expr, ast.Call) else expr.value
    return expr.id if isinstance(expr, ast.Name) else None


def _parts(node: ast.stmt, ours: set[str]) -> list[ast.AST]:
    """What a kept statement refers to: all of it, but a stripped decorator's arguments."""
    if _stripped(node, ours) and isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
        return [node.args, *node.body] + ([node.returns] if node.returns else [])
    return [node]
