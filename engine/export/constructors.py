"""Source code that rebuilds a submodule of a compiled graph: ``nn.Conv2d(3, 64, ...)``.

Written from the block's :class:`~engine.spec.Recipe`, the very call the compiler
made, so the file cannot disagree with the compiled module. Keyword arguments at the
callee's default are left out and a square pair ``(3, 3)`` is written ``3`` (for
``torch.nn`` and ``torch_modules`` classes, which take an int for a square pair, not
for plug-in functions, which get their values as the analysis did), so the line
reads like hand-written code.

Inside the class of a block made of blocks (SPEC §9) a value may come from one of the
block's arguments or from its input's channel count: such a value is a :func:`named`
one, an int (or str, float) that remembers the name it came from and is written as that
name (``nn.Conv2d(in_channels, width, kernel_size=3)``), always, even when it equals
the callee's default.
"""

from __future__ import annotations

import inspect
from typing import Any

from ..spec import Recipe


class _NamedInt(int):
    source: str

    def __repr__(self) -> str:
        return self.source


class _NamedFloat(float):
    source: str

    def __repr__(self) -> str:
        return self.source


class _NamedStr(str):
    source: str

    def __repr__(self) -> str:
        return self.source


class Source:
    """Source text standing for a value, e.g. ``k`` for the pair ``(k[0], k[1])``."""

    def __init__(self, text: str) -> None:
        self.source = text

    def __repr__(self) -> str:
        return self.source


def named(value: Any, name: str) -> Any:
    """``value`` remembering that it is written ``name``; a pair's items become
    ``name[0]`` and ``name[1]``. A bool cannot remember (it is written as a literal)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float | str):
        kind = _NamedInt if isinstance(value, int) else (
            _NamedFloat if isinstance(value, float) else _NamedStr)
        out = kind(value)
        out.source = name
        return out
    if isinstance(value, tuple | list):
        return tuple(named(v, f"{name}[{i}]") for i, v in enumerate(value))
    return value


def is_named(value: Any) -> bool:
    """Whether ``value`` (or an item of it) is written as a name."""
    if isinstance(value, tuple | list):
        return any(is_named(v) for v in value)
    return hasattr(value, "source")


def recipe_call(recipe: Recipe) -> tuple[str, list[str]]:
    """The callee (``nn.Conv2d``, ``BasicResidual``, ``GroupNorm``) and its arguments
    as source text, apart so that a long call can be wrapped."""
    plain = isinstance(recipe.target, str)
    defaults = _defaults(recipe.resolve())

    def tidy(value: Any) -> Any:
        return _squeeze(value) if plain else value

    args = [repr(tidy(a)) for a in recipe.args]
    for key, value in recipe.kwargs.items():
        value = tidy(value)
        if key in defaults and not is_named(value) and _same(value, tidy(defaults[key])):
            continue
        args.append(f"{key}={value!r}")
    return recipe.name, args


def constructor(recipe: Recipe) -> str:
    """A Python expression that builds the recipe's module (fresh weights)."""
    callee, args = recipe_call(recipe)
    return f"{callee}({', '.join(args)})"


def _defaults(target: Any) -> dict[str, Any]:
    try:
        parameters = inspect.signature(target).parameters.values()
    except (TypeError, ValueError):  # no signature to read: write every argument
        return {}
    return {p.name: p.default for p in parameters if p.default is not inspect.Parameter.empty}


def _same(a: Any, b: Any) -> bool:
    """Equal and of the same kind: ``bias=1`` is not the default ``True``."""
    return isinstance(a, bool) == isinstance(b, bool) and a == b


def _squeeze(value: Any) -> Any:
    """``(3, 3)`` → ``3``: every torch.nn layer here takes an int for a square pair;
    ``(k[0], k[1])`` → ``k``, the pair argument it came from."""
    if isinstance(value, tuple) and value and len({repr(v) for v in value}) == 1:
        return value[0]
    sources = [getattr(v, "source", None) for v in value] if isinstance(value, tuple) else []
    if sources and all(sources):
        base = {s.rsplit("[", 1)[0] for s in sources}
        if len(base) == 1 and sources == [f"{next(iter(base))}[{i}]"
                                          for i in range(len(sources))]:
            return Source(next(iter(base)))
    return value
