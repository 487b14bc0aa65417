"""``convas import`` (SPEC §8): an existing network as a design, with its weights.

``convas import MODEL -o OUT.convas.json [--input-shape C,H,W]`` writes the design
(laid out) and ``OUT.pt``, a checkpoint with the model's weights, beside it. MODEL
is an ``.onnx`` file or a Python reference (``file.py:function``,
``package.module:function``). Exit status as in §4: 1 with the operator list for a
model the catalogue cannot express, 1 with a message for an unreadable model or an
unwritable output (nothing is written then), 2 for usage errors.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from engine.importers import parse_input_shape

if TYPE_CHECKING:
    from engine.importers import Imported

EXIT_OK, EXIT_INVALID = 0, 1


def input_shape_arg(text: str) -> tuple[int, int, int]:
    """``3,224,224`` → ``(3, 224, 224)``; argparse turns the error into exit status 2."""
    try:
        shape = parse_input_shape(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    if shape is None:
        raise argparse.ArgumentTypeError("give the input size as C,H,W, e.g. 3,224,224")
    return shape


def add_import_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("import", help="turn an ONNX file or a PyTorch model into a design "
                                      "with its weights",
                       description="Import MODEL (an .onnx file, or file.py:function / "
                                   "package.module:function returning an nn.Module, traced "
                                   "with torch.fx) as an editable design, laid out, and write "
                                   "its weights beside it as a checkpoint (OUT.pt).")
    p.add_argument("model", metavar="MODEL")
    p.add_argument("-o", "--output", required=True, metavar="OUT.convas.json")
    p.add_argument("--input-shape", type=input_shape_arg, metavar="C,H,W",
                   help="the input size to import at (needed when the model does not fix "
                        "it, always for a Python model)")


def checkpoint_path(design: str | Path) -> Path:
    """``net.convas.json`` → ``net.pt`` beside it."""
    design = Path(design)
    name = design.name
    for suffix in (".convas.json", ".json"):
        if name.endswith(suffix) and len(name) > len(suffix):
            return design.with_name(name[: -len(suffix)] + ".pt")
    return design.with_name(name + ".pt")


def save_imported(imported: Imported, model: str, path: str | Path) -> Path:
    """Write ``imported``'s weights as a checkpoint at ``path``, with the task, the
    model it came from, the importer's notes and the Input's size (``preprocess``), as
    ``convas import`` and File → Import both save them. Raises CheckpointError."""
    from engine.checkpoint import save_checkpoint

    graph = imported.graph
    inputs = [n for n in graph.nodes if graph.type_of(n) == "Input"]
    outputs = [n for n in graph.nodes if graph.type_of(n) == "Output"]
    task = graph.params_of(outputs[0]).get("task", "classification") if outputs else \
        "classification"
    extras: dict[str, Any] = {"imported_from": str(model),
                              "import_notes": list(imported.notes)}
    if len(inputs) == 1:
        p = graph.params_of(inputs[0])
        if {"channels", "height", "width"} <= p.keys():
            extras["preprocess"] = {"channels": p["channels"], "size": [p["height"], p["width"]]}
    return save_checkpoint(path, graph, imported.state_dict, task=task, **extras)


def run_import(args: argparse.Namespace, out: TextIO | None = None,
               err: TextIO | None = None) -> int:
    """Import as ``args`` say; 1 (nothing written) when the model cannot be imported."""
    from engine.checkpoint import CheckpointError
    from engine.importers import ImportModelError, import_model

    out = out or sys.stdout
    err = err or sys.stderr
    try:
        imported = import_model(args.model, args.input_shape)
    except ImportModelError as exc:   # UnsupportedModel too: its message lists the operators
        err.write(f"convas: cannot import {args.model}: {exc}\n")
        return EXIT_INVALID
    design = Path(args.output)
    ckpt = checkpoint_path(design)
    try:
        save_imported(imported, args.model, ckpt)
        imported.graph.save(design)
    except (CheckpointError, OSError) as exc:
        with contextlib.suppress(OSError):
            ckpt.unlink()
        reason = exc if isinstance(exc, CheckpointError) else (exc.strerror or exc)
        err.write(f"convas: cannot write {design}: {reason}; choose another output "
                  f"folder\n")
        return EXIT_INVALID
    out.write(f"{imported.summary()}\n")
    for note in imported.notes:
        out.write(f"  {note}\n")
    out.write(f"wrote {design} and its weights {ckpt}\n")
    return EXIT_OK
