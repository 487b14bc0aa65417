"""The block catalogue: every block type Convas knows, each defined once.

Importing this package never imports torch; builders import it when called.
"""

from __future__ import annotations

from ..spec import BlockSpec
from . import activation, composite, conv, io, linear, merge, norm, pool, reshape

CATALOGUE: dict[str, BlockSpec] = {}


def register(spec: BlockSpec) -> BlockSpec:
    """Add a block type under its stable name; a second block of the same name is refused."""
    if spec.type in CATALOGUE:
        raise ValueError(f"block type {spec.type!r} is registered twice")
    CATALOGUE[spec.type] = spec
    return spec


for _family in (io, conv, pool, activation, norm, reshape, linear, merge, composite):
    for _spec in _family.BLOCKS:
        register(_spec)

CATEGORIES: tuple[str, ...] = tuple(dict.fromkeys(s.category for s in CATALOGUE.values()))


def get_block(type_name: str) -> BlockSpec:
    """The spec of ``type_name``; KeyError names the known types so the message can help."""
    try:
        return CATALOGUE[type_name]
    except KeyError:
        raise KeyError(
            f"unknown block type {type_name!r}; known types: {', '.join(CATALOGUE)}"
        ) from None


__all__ = ["CATALOGUE", "CATEGORIES", "get_block", "register"]
