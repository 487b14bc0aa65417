"""Checkpoints (SPEC §4, §7): the graph, the weights, what is needed to resume, and
what is needed to use the model: its ``"task"``, ``"classes"`` (the class names) and
``"preprocess"`` (``{"channels", "size": [H, W], "mean", "std"}``, the normalisation
used in training).

Saved with ``torch.save`` as plain dicts, lists, numbers, strings and tensors, so
``torch.load(path, weights_only=True)`` reads them and loading never runs code from
the file. Writes go to a temporary file first: a crash or a full disk mid-save keeps
the previous checkpoint intact.
"""

from __future__ import annotations

import os
import pickle
import struct
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from .blocks import CATALOGUE
from .errors import GraphError
from .files import AtomicFile
from .graph import Graph

FORMAT = "convas.checkpoint"
VERSION = 1


class CheckpointError(Exception):
    """A checkpoint that cannot be written or read; the message says why and what to do."""


def save_checkpoint(path: str | os.PathLike, graph: Graph, state_dict: dict[str, Any], *,
                    task: str = "classification", **extra: Any) -> Path:
    """Write atomically. ``extra`` holds optimizer/scheduler state, epoch, metrics,
    ``classes``, ``preprocess``, ..."""
    path = Path(path)
    data = {"format": FORMAT, "version": VERSION, "graph": graph.to_dict(),
            "state_dict": {k: v.detach().cpu() for k, v in state_dict.items()},
            "task": task, **extra}
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        out = AtomicFile(path, binary=True)
    except OSError as exc:
        raise CheckpointError(f"cannot write a checkpoint in {path.parent}: {exc.strerror}; "
                              f"choose another output folder") from None
    try:
        with out as fh:
            torch.save(data, fh)
    except OSError as exc:
        raise CheckpointError(
            f"could not write the checkpoint {path}: {exc.strerror or exc}"
            + ("; the disk is full: free some space or choose another output folder"
               if getattr(exc, "errno", None) == 28 else "")
            + "; the previous checkpoint, if any, is unchanged"
        ) from None
    return path


def load_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """Read and check a checkpoint; anything else is refused with a clear message."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, EOFError, zipfile.BadZipFile, pickle.UnpicklingError, ValueError,
            OSError, struct.error) as exc:  # struct.error: a few bytes of anything else
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(
            f"{path} is not a readable checkpoint (truncated, damaged, or not a PyTorch file: "
            f"{first[:200]}); use another file, e.g. the model.pt of a finished run"
        ) from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise CheckpointError(
            f"{path} is a PyTorch file but not a Convas checkpoint (it has no "
            f"'format': '{FORMAT}'); Convas reads the model.pt files written by convas train"
        )
    if not isinstance(data.get("version"), int) or data["version"] > VERSION:
        raise CheckpointError(f"{path} is checkpoint version {data.get('version')!r}, newer "
                              f"than this Convas reads ({VERSION}): update Convas")
    if not isinstance(data.get("state_dict"), dict) or not isinstance(data.get("graph"), dict):
        raise CheckpointError(f"{path} lacks its graph or weights: it is damaged")
    data.setdefault("task", "classification")  # checkpoints from before tasks: classifiers
    if "preprocess" not in data and "mean" in data and "std" in data:
        size = _input_size(data["graph"])
        if size is not None:
            data["preprocess"] = {"channels": size[0], "size": list(size[1:]),
                                  "mean": list(data["mean"]), "std": list(data["std"])}
    return data


def _input_size(graph: dict[str, Any]) -> tuple[int, int, int] | None:
    """The Input block's (C, H, W) in a saved graph, for checkpoints without
    ``preprocess``; None when there is no single Input to read it from."""
    try:
        g = Graph.from_dict(graph)
    except (GraphError, ValueError):
        return None
    inputs = [n for n in g.nodes if g.type_of(n) == "Input"]
    if len(inputs) != 1:
        return None
    p = {**CATALOGUE["Input"].defaults(), **g.params_of(inputs[0])}
    try:
        return int(p["channels"]), int(p["height"]), int(p["width"])
    except (TypeError, ValueError):
        return None


def weights_mismatch(model: torch.nn.Module, state_dict: Mapping[str, torch.Tensor]) -> str:
    """What keeps ``state_dict`` from loading into ``model``, briefly; "" when it fits.
    (torch's own message lists every key, hundreds for a large network.)"""
    own = model.state_dict()
    missing = [k for k in own if k not in state_dict]
    unexpected = [k for k in state_dict if k not in own]
    problems = []
    if missing:
        problems.append("missing " + _some(missing))
    if unexpected:
        problems.append("unexpected " + _some(unexpected))
    for key, tensor in own.items():
        theirs = state_dict.get(key)
        if theirs is not None and tuple(theirs.shape) != tuple(tensor.shape):
            problems.append(f"{key} is {list(theirs.shape)} in the weights but "
                            f"{list(tensor.shape)} in the graph")
            break
    return "; ".join(problems)


def load_matching(model: torch.nn.Module, checkpoint: Mapping[str, Any],
                  source: str | os.PathLike = "the checkpoint") -> tuple[list[str], list[str]]:
    """Start ``model`` (from ``compile_graph``) from a checkpoint's weights where they fit,
    for fine-tuning (SPEC §8): a node takes the weights of the checkpoint's node of the
    same id when every one of its tensors is there with the same shape, else it keeps
    its fresh initialisation, whole (a node half from one network and half fresh would
    be neither). Returns the loaded and the fresh node ids, in graph order.

    Raises CheckpointError when no node fits at all: that is a wrong file, not a start.
    """
    from .compile import module_names

    nodes = checkpoint["graph"].get("nodes")
    their_ids = [n["id"] for n in nodes if isinstance(n, dict) and isinstance(n.get("id"), str)] \
        if isinstance(nodes, list) else []
    their_node = {name: n for n, name in module_names(their_ids).items()}
    theirs: dict[str, dict[str, Any]] = {}
    for key, tensor in checkpoint["state_dict"].items():
        prefix, _, rest = str(key).partition(".")
        if prefix in their_node and rest and isinstance(tensor, torch.Tensor):
            theirs.setdefault(their_node[prefix], {})[rest] = tensor
    own = model.state_dict()
    loaded: list[str] = []
    fresh: list[str] = []
    update: dict[str, torch.Tensor] = {}
    for node, name in model.meta["convas_modules"].items():
        mine = {k[len(name) + 1:]: v for k, v in own.items() if k.startswith(name + ".")}
        if not mine:
            continue  # a block without weights or statistics: nothing to load
        got = theirs.get(node, {})
        if got.keys() == mine.keys() and all(got[k].shape == v.shape for k, v in mine.items()):
            loaded.append(node)
            update.update({f"{name}.{k}": got[k] for k in mine})
        else:
            fresh.append(node)
    if fresh and not loaded:
        raise CheckpointError(
            f"{source}: none of its weights fits this design (no node with the same id and "
            f"tensor shapes): choose the checkpoint of this design or of the one it was "
            f"made from, or start from fresh weights")
    model.load_state_dict(update, strict=False)
    return loaded, fresh


def _some(keys: list[str], shown: int = 3) -> str:
    more = f" and {len(keys) - shown} more" if len(keys) > shown else ""
    return ", ".join(keys[:shown]) + more
