"""The one error an export raises for anything but an invalid graph."""

from __future__ import annotations


class ExportError(Exception):
    """An export that could not be completed.

    The message says what failed (the exporter, the ONNX checker, onnxruntime, the
    disk) and, where a file was being written, that nothing partial was left. An
    invalid graph raises :class:`engine.GraphError` instead, as ``compile_graph`` does,
    so the caller can show the per-node errors.
    """
