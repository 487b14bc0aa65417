"""Running a trained design on image files (SPEC §7 ``convas predict``).

Images are read with Pillow and preprocessed exactly as in training: converted to grey
("L") or RGB as engine.data.imagefolder does, resized bilinearly to the Input's H×W
where their size differs, scaled to 0..1 and normalised with the checkpoint's mean and
std (engine.data.batches does the same on the device). What the output means is the
task's business (``Task.decode``); this module only reads, batches and writes files.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .analysis import analyze
from .checkpoint import CheckpointError, load_checkpoint, weights_mismatch
from .compile import compile_graph
from .data.imagefolder import EXTENSIONS
from .dataset_fit import output_task
from .errors import GraphError
from .graph import Graph
from .tasks import (
    AVAILABLE_TASKS,
    anchors_mismatch,
    get_task,
    output_anchors,
    trained_anchors,
)

BATCH = 32
DETECTION_SCORE = 0.25  # the boxes shown when no --score-threshold is given
MASK_SUFFIX = ".mask.png"


class PredictError(Exception):
    """Predictions that cannot be made; the message names the file and what to do."""


@dataclass
class Predictor:
    """A compiled design with its trained weights and how to feed it images."""

    model: torch.nn.Module
    task: str
    classes: list[str]
    channels: int
    size: tuple[int, int]
    mean: list[float]
    std: list[float]
    anchors: list[list[float]] | None = None  # detection: the Output's [w, h] pairs

    def preprocess(self, path: Path) -> tuple[torch.Tensor, tuple[int, int]]:
        """One image as the network saw its training images (float32 [C, H, W]) and
        the image's own (width, height)."""
        arr, own = read_image(path, self.channels, self.size)
        x = torch.from_numpy(arr).to(torch.float32).mul_(1.0 / 255.0)
        mean = torch.tensor(self.mean, dtype=torch.float32).view(-1, 1, 1)
        inv_std = 1.0 / torch.tensor(self.std, dtype=torch.float32).view(-1, 1, 1)
        return (x - mean) * inv_std, own


def read_image(path: Path, channels: int, size: tuple[int, int]) -> tuple[np.ndarray,
                                                                          tuple[int, int]]:
    """uint8 [C, H, W] at ``size`` and the image's own (width, height), read by the
    training loader's own function, so predictions see what training saw."""
    from .data import DatasetError
    from .data.imagefolder import decode_image

    try:
        return decode_image(path, channels, size)
    except DatasetError as exc:
        raise PredictError(f"{exc}; remove it or convert it to PNG or JPEG") from None


def load_predictor(graph: Graph, weights: str | os.PathLike) -> Predictor:
    """The design compiled with the checkpoint's weights, in eval mode; refused with a
    clear message when the checkpoint does not fit the design or the task is not
    available."""
    report = analyze(graph)
    task = output_task(report)
    if task not in AVAILABLE_TASKS:
        raise PredictError(f"the Output block's task is {task}, which convas predict cannot "
                           f"run yet: use {' or '.join(AVAILABLE_TASKS)}")
    try:
        data = load_checkpoint(weights)
    except CheckpointError as exc:
        raise PredictError(str(exc)) from None
    try:
        model = compile_graph(graph, report)
    except GraphError as exc:
        raise PredictError(f"{graph.name or 'the design'} is not valid: {exc}") from None
    problem = weights_mismatch(model, data["state_dict"])
    if problem:
        design = f"the design {graph.name}" if graph.name else "the design"
        raise PredictError(f"the checkpoint {weights} does not fit {design}: {problem}; "
                           f"use the model.pt trained from this design")
    if data.get("task", "classification") != task:
        raise PredictError(f"the checkpoint {weights} was trained for {data.get('task')} but "
                           f"the design's Output does {task}; use the matching design")
    problem = anchors_mismatch(report, trained_anchors(data))
    if problem:
        raise PredictError(f"the checkpoint {weights} does not fit the design: {problem}")
    model.load_state_dict(data["state_dict"])
    model.eval()
    inp = report.nodes[_input_id(graph)].output_shape
    channels, h, w = (int(v) for v in inp)
    pre = data.get("preprocess")
    if not isinstance(pre, dict) or "mean" not in pre or "std" not in pre:
        raise PredictError(f"the checkpoint {weights} does not say how its training images "
                           f"were normalised (no mean/std); retrain with this Convas")
    mean, std = [float(v) for v in pre["mean"]], [float(v) for v in pre["std"]]
    if channels not in (1, 3) or len(mean) != channels or len(std) != channels:
        raise PredictError(f"the design's Input has {channels} channels but the checkpoint "
                           f"{weights} was trained on {len(mean)}-channel images; "
                           f"predict reads images as grey (1) or RGB (3)")
    classes = [str(c) for c in data.get("classes") or []]
    anchors = output_anchors(report) if task == "detection" else None
    return Predictor(model, task, classes, channels, (h, w), mean, std, anchors)


def _input_id(graph: Graph) -> str:
    inputs = [n for n in graph.nodes if graph.type_of(n) == "Input"]
    if len(inputs) != 1:
        raise PredictError(f"convas predict needs a design with one Input block, this one "
                           f"has {len(inputs)}")
    return inputs[0]


def image_files(paths: Iterable[str | os.PathLike]) -> list[Path]:
    """The images named: files as given, folders expanded to their image files, sorted
    (masks written by an earlier run, ``*.mask.png``, left out)."""
    files: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            found = sorted(f for f in p.iterdir()
                           if f.is_file() and f.suffix.lower() in EXTENSIONS
                           and not f.name.startswith(".") and not f.name.endswith(MASK_SUFFIX))
            if not found:
                raise PredictError(f"the folder {p} holds no images "
                                   f"({', '.join(sorted(EXTENSIONS))})")
            files.extend(found)
        elif p.is_file():
            files.append(p)
        else:
            raise PredictError(f"{p}: no such image file or folder")
    if not files:
        raise PredictError("no images given: name image files or folders")
    return files


def palette(count: int = 256) -> list[int]:
    """A flat RGB palette with a distinct colour per class (PASCAL VOC's bit pattern:
    class 0 black, then red, green, yellow, blue, ...), for the mask PNGs."""
    flat: list[int] = []
    for k in range(count):
        r = g = b = 0
        c = k
        for shift in range(7, -1, -1):
            r |= (c & 1) << shift
            g |= ((c >> 1) & 1) << shift
            b |= ((c >> 2) & 1) << shift
            c >>= 3
        flat += [r, g, b]
    return flat


def mask_path(image: Path, out_dir: Path | None) -> Path:
    """Where an image's mask goes: ``NAME.mask.png`` in ``out_dir``, else beside it."""
    return (out_dir or image.parent) / (image.stem + MASK_SUFFIX)


def write_mask(class_map: np.ndarray, own_size: tuple[int, int], path: Path) -> np.ndarray:
    """A palette PNG of class indexes at the image's own (width, height), resized with
    nearest neighbour so every pixel keeps a class the network predicted; returns the
    mask as written."""
    from PIL import Image

    img = Image.fromarray(np.ascontiguousarray(class_map, dtype=np.uint8), mode="P")
    if img.size != own_size:
        img = img.resize(own_size, Image.Resampling.NEAREST)
    img.putpalette(palette())
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        img.save(path)
    except OSError as exc:
        raise PredictError(f"cannot write the mask {path}: {exc.strerror or exc}; choose "
                           f"another folder with --out") from None
    return np.asarray(img)


def predict(predictor: Predictor, images: Sequence[Path], *, top: int = 5,
            score_threshold: float = 0.0, out_dir: Path | None = None,
            batch_size: int = BATCH) -> list[dict[str, Any]]:
    """One result per image, in order, as SPEC §7's JSON objects. Classification keeps
    the ``top`` best classes with a probability of at least ``score_threshold``;
    segmentation writes each mask and names the classes in it; detection keeps the
    boxes scoring at least ``score_threshold`` (0.25 when it is 0), in the image's own
    pixels."""
    task = get_task(predictor.task, predictor.classes, predictor.anchors, predictor.size)
    results: list[dict[str, Any]] = []
    for start in range(0, len(images), batch_size):
        chunk = list(images[start:start + batch_size])
        read = [predictor.preprocess(p) for p in chunk]
        x = torch.stack([r[0] for r in read])
        sizes = [r[1] for r in read]
        with torch.inference_mode():
            out = predictor.model(x)
        for path, size, decoded in zip(chunk, sizes, task.decode(out, predictor.classes, top),
                                       strict=True):
            results.append(_result(predictor, path, size, decoded, score_threshold, out_dir))
    return results


def _result(predictor: Predictor, path: Path, size: tuple[int, int], decoded: dict,
            threshold: float, out_dir: Path | None) -> dict[str, Any]:
    if "top" in decoded:
        kept = [t for t in decoded["top"] if t["probability"] >= threshold]
        return {"image": str(path), "top": kept}
    if "detections" in decoded:
        return {"image": str(path), "detections": scale_detections(
            decoded["detections"], predictor.size, size, threshold or DETECTION_SCORE)}
    target = mask_path(path, out_dir)
    written = write_mask(decoded["class_map"], size, target)
    # the classes in the mask as written: a resize to a smaller image may drop some
    names = [predictor.classes[i] if i < len(predictor.classes) else str(i)
             for i in (int(c) for c in np.unique(written))]
    return {"image": str(path), "mask": str(target), "classes_present": names}


def scale_detections(detections: list[dict], input_hw: tuple[int, int],
                     own_size: tuple[int, int], threshold: float) -> list[dict]:
    """Detections scoring at least ``threshold``, their boxes moved from input pixels
    (the Input's H×W the image was resized to) to the image's own (width, height)."""
    (h, w), (own_w, own_h) = input_hw, own_size
    sx, sy = own_w / w, own_h / h
    return [dict(d, box=[round(d["box"][0] * sx, 2), round(d["box"][1] * sy, 2),
                         round(d["box"][2] * sx, 2), round(d["box"][3] * sy, 2)])
            for d in detections if d["score"] >= threshold]

