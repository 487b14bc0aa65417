"""Source code that rebuilds a submodule of a compiled graph: ``nn.Conv2d(3, 64, ...)``.

Written from the block's :class:`~engine.spec.Recipe`, the very call the compiler
made, so the file cannot disagree with the compiled module. Keyword arguments at the
callee's default are left out and a square pair ``(3, 3)`` is written ``3`` (for
``torch.nn`` and ``torch_modules`` classes, which take an int for a square pair, not
for plug-in functions, which get their values as the analysis did), so the line
reads like hand-written code.
"""

from __future__ import annotations

import inspect
from typing import Any

from ..spec import Recipe


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
        if key in defaults and _same(value, tidy(defaults[key])):
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
    """``(3, 3)`` → ``3``: every torch.nn layer here takes an int for a square pair."""
    if isinstance(value, tuple) and value and len(set(value)) == 1:
        return value[0]
    return value
