"""Export a graph to ONNX or to a standalone PyTorch ``.py`` file (SPEC §4).

Both formats are written atomically: a failed export leaves nothing behind, and an
existing file of the same name is only replaced by a complete, checked one. Importing
this package imports torch; the editor imports it when the user asks for an export.
"""

from __future__ import annotations

from .errors import ExportError
from .onnx_export import OnnxReport, export_onnx
from .pytorch import export_pytorch, pytorch_source

__all__ = ["ExportError", "OnnxReport", "export_onnx", "export_pytorch", "pytorch_source"]
