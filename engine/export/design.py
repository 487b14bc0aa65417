"""One export path for the command line and the application (SPEC §4).

``convas export`` and File → Export both call :func:`export_design` and show
:meth:`ExportResult.describe`, so the two cannot drift apart: the same design and
weights give the same files and the same message. The weights are a checkpoint (a
run's ``model.pt``) or a ``state_dict``; a ``.py`` export writes them beside it as a
``.pt`` checkpoint that its own header tells how to load.

Every file of one export is staged and moved into place together, so a failure
leaves nothing partial behind (a ``.py`` without its ``.pt``, or the reverse).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch

from ..analysis import analyze
from ..checkpoint import FORMAT as CHECKPOINT_FORMAT
from ..checkpoint import VERSION as CHECKPOINT_VERSION
from ..checkpoint import CheckpointError, load_checkpoint, weights_mismatch
from ..compile import compile_graph
from ..graph import Graph
from ..tasks import anchors_mismatch, trained_anchors
from ..units import human_bytes
from .errors import ExportError
from .files import NOTHING_LEFT, staged_output
from .metadata import onnx_metadata
from .onnx_export import OnnxReport, export_onnx
from .pytorch import pytorch_source

Format = Literal["onnx", "pytorch", "checkpoint"]
FORMATS: tuple[str, ...] = ("onnx", "pytorch", "checkpoint")
SUFFIXES = {"onnx": ".onnx", "pytorch": ".py", "checkpoint": ".pt"}
Weights = str | os.PathLike | Mapping[str, torch.Tensor] | None
# What a checkpoint written beside a .py keeps of the run's: what is needed to use the
# model (classes, normalisation), not to resume it (optimizer and scheduler state).
_KEPT_FOR_USE = ("epoch", "metrics", "classes", "mean", "std", "dataset", "task",
                 "preprocess")
NO_WEIGHTS = "no trained weights were given"


@dataclass(frozen=True)
class ExportResult:
    """What one export wrote and with which weights; plain data, so a child process
    can send it back to the application.

    ``files`` holds (path, size in bytes) for every file written, the main one first.
    ``weights_from`` names the trained weights (a checkpoint's path, or "the given
    state_dict") and is "" when the export carries fresh ones, ``untrained_because``
    then saying why. ``onnx`` holds onnxruntime's comparison for an ONNX export.
    """

    format: str
    files: tuple[tuple[Path, int], ...]
    weights_from: str = ""
    untrained_because: str = ""
    onnx: OnnxReport | None = None
    notes: tuple[str, ...] = ()

    @property
    def path(self) -> Path:
        """The main file written (the model, the .py or the checkpoint)."""
        return self.files[0][0]

    @property
    def trained(self) -> bool:
        return bool(self.weights_from)

    @property
    def ok(self) -> bool:
        """False only when onnxruntime disagrees with PyTorch beyond the tolerance."""
        return self.onnx is None or self.onnx.ok

    def describe(self) -> str:
        """The one message the command line prints and the application shows."""
        weights = (f"trained weights from {self.weights_from}" if self.trained
                   else f"untrained weights: {self.untrained_because}")
        if self.onnx is not None:
            text = f"{self.onnx.describe()}; {weights}"
        elif self.format == "pytorch":
            py, size = self.files[0]
            text = f"PyTorch module written to {py} ({human_bytes(size)})"
            if len(self.files) > 1:
                pt, pt_size = self.files[1]
                text += (f" with its {weights} beside it in {pt.name} ({human_bytes(pt_size)}):"
                         f' model.load_state_dict(torch.load("{pt.name}", weights_only=True)'
                         f'["state_dict"])')
            else:
                text += f"; {weights}, so no .pt was written beside it"
        else:
            path, size = self.files[0]
            text = (f"checkpoint written to {path} ({human_bytes(size)}) with the {weights}; "
                    f"use it with convas export --weights, convas train --resume or "
                    f"torch.load(path, weights_only=True)")
        return "; ".join([text, *self.notes])


def format_for(path: str | os.PathLike) -> str:
    """The format a file name asks for: ``.py`` → pytorch, ``.pt`` → checkpoint, else onnx."""
    return {".py": "pytorch", ".pt": "checkpoint"}.get(Path(path).suffix.lower(), "onnx")


def weights_file_for(path: str | os.PathLike) -> Path:
    """Where a ``.py`` export writes its weights: beside it, with the suffix ``.pt``."""
    return Path(path).with_suffix(".pt")


def export_design(graph: Graph, path: str | os.PathLike, format: str | None = None,
                  weights: Weights = None, *,
                  if_unfit: Literal["refuse", "untrained"] = "refuse",
                  dynamic_size: bool = False) -> ExportResult:
    """Export ``graph`` to ``path`` as ONNX, a PyTorch ``.py`` (with its weights beside it
    as ``.pt``) or a checkpoint, and say what was written.

    ``weights`` is a checkpoint file or a ``state_dict``. Weights that do not fit the
    design are refused (``if_unfit="refuse"``, for weights a person chose) or replaced by
    fresh ones with a note (``"untrained"``, for the application's last run, which an
    edit may have outdated). ``dynamic_size`` (ONNX only) makes H and W dynamic axes
    for a fully convolutional design and refuses any other, naming the block that fixes
    its size (SPEC §7). An ONNX file's ``metadata_props`` hold the task, class names and
    normalisation of the checkpoint whose weights it carries, or what the design says
    (:func:`engine.export.metadata.onnx_metadata`). Raises :class:`engine.GraphError`
    for an invalid graph and :class:`ExportError` for anything else; either way nothing
    was written.
    """
    path = Path(path)
    fmt = format or format_for(path)
    if fmt not in FORMATS:
        raise ExportError(f"unknown export format {fmt!r}: use {', '.join(FORMATS)}")
    if dynamic_size and fmt != "onnx":
        raise ExportError(f"--dynamic-size is for ONNX exports (H and W as dynamic axes); a "
                          f"{fmt} export runs at whatever size the design allows already: "
                          f"leave --dynamic-size out, or export to a .onnx file; {NOTHING_LEFT}")
    state, extras, source, copy_from = _read_weights(weights)
    untrained = NO_WEIGHTS
    if state is not None:
        problem = _misfit(graph, state) or anchors_mismatch(  # GraphError: invalid graph
            analyze(graph), extras.get("anchors"))
        if problem and (if_unfit == "refuse" or fmt == "checkpoint"):
            raise ExportError(f"the weights in {source} do not fit this design (was it "
                              f"changed since they were trained, or are they another "
                              f"design's?): {problem}; {NOTHING_LEFT}")
        if problem:
            state, untrained = None, f"the design changed since {source} was trained ({problem})"
    if fmt == "onnx":
        # the checkpoint's task, classes and normalisation only with its weights
        metadata = onnx_metadata(analyze(graph), extras if state is not None else None)
        report = export_onnx(graph, path, state_dict=state, dynamic_size=dynamic_size,
                             metadata=metadata)
        files = [(p, p.stat().st_size) for p in (report.path, report.data_path) if p]
        return _result(fmt, files, source, state, untrained, onnx=report)
    if fmt == "pytorch":
        return _export_pytorch(graph, path, state, extras, source, untrained)
    if state is None:
        raise ExportError(f"a checkpoint export needs trained weights and {NO_WEIGHTS}: "
                          f"train the design first (convas train, or Start in the Training "
                          f"dock) and export with its checkpoint; {NOTHING_LEFT}")
    with staged_output(path) as stage:
        if copy_from is not None:  # the run's own file, optimizer state and all
            (stage / path.name).write_bytes(copy_from.read_bytes())
        else:
            _save(stage / path.name, graph, state, extras)
    return _result(fmt, [(path, path.stat().st_size)], source, state, untrained)


def _export_pytorch(graph: Graph, path: Path, state: Mapping[str, torch.Tensor] | None,
                    extras: dict[str, Any], source: str, untrained: str) -> ExportResult:
    # a detector's CLASSES: the checkpoint's names, only with its weights
    classes = extras.get("classes") if state is not None else None
    source_text = pytorch_source(graph, classes)
    pt = weights_file_for(path)
    if state is not None and pt == path:
        raise ExportError(f"a .py export writes its weights beside it as {pt.name}: give the "
                          f".py file a name ending in .py; {NOTHING_LEFT}")
    with staged_output(path) as stage:
        (stage / path.name).write_text(source_text, encoding="utf-8")
        if state is not None:
            _save(stage / pt.name, graph, state, extras)
    files = [(path, path.stat().st_size)]
    notes = []
    if state is not None:
        files.append((pt, pt.stat().st_size))
    elif pt.exists():
        notes.append(f"the {pt.name} beside it is older and was left as it is")
    return _result("pytorch", files, source, state, untrained, notes=notes)


def _result(fmt: str, files: list[tuple[Path, int]], source: str,
            state: Mapping | None, untrained: str, onnx: OnnxReport | None = None,
            notes: list[str] | None = None) -> ExportResult:
    trained = state is not None
    return ExportResult(format=fmt, files=tuple(files), weights_from=source if trained else "",
                        untrained_because="" if trained else untrained, onnx=onnx,
                        notes=tuple(notes or ()))


def _read_weights(weights: Weights) -> tuple[dict | None, dict[str, Any], str, Path | None]:
    """(state_dict, what the checkpoint keeps for using the model, where the weights come
    from in words, the checkpoint file to copy for a checkpoint export)."""
    if weights is None:
        return None, {}, "", None
    if isinstance(weights, Mapping):
        return dict(weights), {}, "the given state_dict", None
    try:
        data = load_checkpoint(weights)
    except CheckpointError as exc:
        raise ExportError(str(exc)) from None
    extras = {k: data[k] for k in _KEPT_FOR_USE if k in data}
    anchors = trained_anchors(data)   # a detector's: what its boxes are relative to
    if anchors is not None:
        extras["anchors"] = anchors
    return data["state_dict"], extras, os.fspath(weights), Path(weights)


def _misfit(graph: Graph, state: Mapping[str, torch.Tensor]) -> str:
    """What keeps ``state`` from loading into the compiled ``graph``; "" when it fits.
    Compiled on the meta device: the names and shapes without allocating weights."""
    with torch.device("meta"):
        model = compile_graph(graph)
    return weights_mismatch(model, state)


def _save(file: Path, graph: Graph, state: Mapping[str, torch.Tensor],
          extras: dict[str, Any]) -> None:
    """A Convas checkpoint of ``graph`` and ``state``: what the ``.py`` header and
    ``convas export --weights`` read."""
    data = {"format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION,
            "graph": graph.to_dict(),
            "state_dict": {k: v.detach().cpu() for k, v in state.items()}, **extras}
    try:
        torch.save(data, file)
    except RuntimeError as exc:  # torch's writer reports a full disk this way
        why = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise ExportError(f"cannot write {file.name}: {why}; {NOTHING_LEFT}") from exc
