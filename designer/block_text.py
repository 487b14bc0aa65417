"""The short texts a block shows on the canvas: its key parameters and badges.

Kept in one place so the canvas, the summary and screenshots say the same thing.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from engine.blocks import CATALOGUE
from engine.spec import BlockSpec
from engine.units import human_count


def subtitle(type_name: str, params: Mapping[str, Any] | None,
             spec: BlockSpec | None = None) -> str:
    """Key parameters, e.g. '64 · 3×3 · s2' for a strided convolution: the block's own
    ``subtitle`` (``spec``, or the catalogue's), or nothing for a type Convas does not
    know."""
    spec = spec or CATALOGUE.get(type_name)
    return spec.subtitle_text(params) if spec is not None else ""


def shape_badge(shape: tuple[int, ...] | None) -> str:
    return "?" if shape is None else "[" + ", ".join(str(d) for d in shape) + "]"


def params_badge(count: int) -> str:
    return human_count(count) if count else ""
