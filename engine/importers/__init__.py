"""Import an existing network as an editable design with its weights (SPEC §8).

``import_onnx("model.onnx")`` reads a file from either of torch's ONNX exporters;
``import_python("file.py:build")`` traces a function's ``nn.Module`` with torch.fx.
Both return an :class:`Imported`: the laid-out :class:`~engine.graph.Graph` (ids
from the model's own layer names), the ``state_dict`` that loads into
``engine.compile_graph(graph)``, and notes on what was folded or dropped. A model
with operators no block expresses raises :class:`UnsupportedModel`, listing them;
any other problem :class:`ImportModelError`, whose message says what to do.

Importing this package loads neither onnx nor torch; each importer loads what it needs.
"""

from __future__ import annotations

import os
from pathlib import Path

from .builder import Imported, ImportModelError, NeedsInputShape, UnsupportedModel

Shape3 = tuple[int, int, int]


def import_onnx(path: str | os.PathLike, input_shape: Shape3 | None = None) -> Imported:
    """An ONNX file as a design (see :mod:`engine.importers.onnx_import`)."""
    from .onnx_import import import_onnx as _import

    return _import(path, input_shape)


def import_python(ref: str, input_shape: Shape3 | None = None) -> Imported:
    """``path/to/file.py:function`` or ``package.module:function`` as a design (see
    :mod:`engine.importers.python_import`)."""
    from .python_import import import_python as _import

    return _import(ref, input_shape)


def import_model(model: str | os.PathLike, input_shape: Shape3 | None = None) -> Imported:
    """An ``.onnx`` file, or a Python reference (``x.py:f``, ``pkg.mod:f``)."""
    text = str(model)
    if is_python_ref(text):
        return import_python(text, input_shape)
    return import_onnx(Path(text), input_shape)


SHAPE_EXAMPLE = "3,224,224"


def parse_input_shape(text: str) -> Shape3 | None:
    """``3,224,224`` (or ``3x224x224``, ``3×224×224``) → ``(3, 224, 224)``; "" → None.
    One reading for ``--input-shape`` and the Import dialog; ValueError says what to type."""
    text = text.strip()
    if not text:
        return None
    parts = [p.strip() for p in text.replace("×", ",").replace("x", ",").split(",")]
    try:
        values = tuple(int(p) for p in parts)
    except ValueError:
        values = ()
    if len(values) != 3 or min(values) < 1:
        raise ValueError(f"{text!r} is not C,H,W: give three positive whole numbers, "
                         f"e.g. {SHAPE_EXAMPLE}")
    return values  # type: ignore[return-value]


def is_python_ref(text: str) -> bool:
    """``file.py:function`` or ``package.module:function``, not a (Windows) file path."""
    head, sep, tail = text.rpartition(":")
    if not sep or not tail.isidentifier() or len(head) < 2:
        return False
    return head.endswith(".py") or all(p.isidentifier() for p in head.split("."))


__all__ = ["SHAPE_EXAMPLE", "ImportModelError", "Imported", "NeedsInputShape",
           "UnsupportedModel", "import_model", "import_onnx", "import_python", "is_python_ref",
           "parse_input_shape"]
