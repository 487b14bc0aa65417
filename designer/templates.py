"""The bundled model templates in ``resources/templates``."""

from __future__ import annotations

from importlib import resources
from importlib.abc import Traversable

SUFFIX = ".convas.json"


def template_files() -> list[Traversable]:
    """Every bundled template, sorted by file name."""
    folder = resources.files("resources") / "templates"
    return sorted((f for f in folder.iterdir() if f.name.endswith(SUFFIX)), key=lambda f: f.name)
