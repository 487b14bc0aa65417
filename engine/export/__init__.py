"""Export a graph to ONNX, a standalone PyTorch ``.py`` file or a checkpoint (SPEC §4).

:func:`export_design` is the one entry point the command line and the application
share; ``export_onnx`` and ``export_pytorch`` are its building blocks.

Every format is written atomically: a failed export leaves nothing behind, and an
existing file of the same name is only replaced by a complete, checked one. Importing
this package imports torch; the editor imports it when the user asks for an export.
"""

from __future__ import annotations

from .design import FORMATS, ExportResult, export_design, format_for
from .errors import ExportError
from .onnx_export import OnnxReport, export_onnx
from .pytorch import export_pytorch, pytorch_source

__all__ = ["FORMATS", "ExportError", "ExportResult", "OnnxReport", "export_design",
           "export_onnx", "export_pytorch", "format_for", "pytorch_source"]
