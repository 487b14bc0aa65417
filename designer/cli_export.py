"""``convas export`` (SPEC §4): a thin front on ``engine.export.export_design``.

File → Export calls the same function, so both write the same files for the same
design and weights and say so in the same words (``ExportResult.describe``).
"""

from __future__ import annotations

import argparse
import sys
from typing import TextIO

from engine import Graph, GraphError

EXIT_OK, EXIT_INVALID = 0, 1
FORMATS = ("onnx", "pytorch", "checkpoint")  # engine.export.FORMATS, without importing torch


def add_export_parser(sub: argparse._SubParsersAction) -> None:
    e = sub.add_parser("export", help="export a graph to ONNX, a standalone PyTorch file or "
                                      "a checkpoint",
                       description="Export FILE (with trained weights from --weights) to ONNX, "
                                   "checked with onnx.checker and compared with onnxruntime; "
                                   "to a .py file that needs only torch, its weights beside it "
                                   "as .pt; or to a checkpoint.")
    e.add_argument("file", metavar="FILE")
    e.add_argument("-o", "--output", required=True, metavar="OUT")
    e.add_argument("--weights", metavar="CKPT", help="a checkpoint written by convas train")
    e.add_argument("--format", choices=FORMATS,
                   help="default: pytorch for a .py OUT, checkpoint for a .pt OUT, else onnx")
    e.add_argument("--dynamic-size", action="store_true",
                   help="ONNX: make H and W dynamic axes too (fully convolutional designs "
                        "only), checked with onnxruntime at the design's size and a larger one")


def export(args: argparse.Namespace, out: TextIO | None = None,
           err: TextIO | None = None) -> int:
    """Export as ``args`` say; 1 when the graph, the weights or the target are unusable,
    or onnxruntime disagrees with PyTorch (the file is then kept for inspection)."""
    from engine.export import ExportError, export_design

    out = out or sys.stdout
    err = err or sys.stderr
    try:
        graph = Graph.load(args.file)
        result = export_design(graph, args.output, args.format, args.weights,
                               dynamic_size=getattr(args, "dynamic_size", False))
    except (GraphError, ExportError) as exc:
        err.write(f"convas: {exc}\n")
        return EXIT_INVALID
    out.write(result.describe() + "\n")
    if not result.ok:
        err.write("convas: onnxruntime disagrees with PyTorch beyond the tolerance; the file "
                  "was written but check it before deploying\n")
        return EXIT_INVALID
    return EXIT_OK
