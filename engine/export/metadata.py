"""What an ONNX file says about how to use the model (SPEC §7): its ``metadata_props``.

A program that runs the exported model (onnxruntime in an app, a web page) needs the
same three things ``convas predict`` reads from a checkpoint: what the output means
(``convas.task``), the class names (``convas.classes``, a JSON list) and how to turn
an image into the input (``convas.preprocess``, JSON ``{"channels": C, "size": [H, W],
"mean": [...], "std": [...]}``). A detector's file also says how to decode its raw
head: ``convas.anchors`` (JSON ``[[w, h], ...]`` in input pixels) and ``convas.decode``
(JSON, the decoding and NMS rules in words and numbers). They are written as strings,
ONNX's only kind of metadata value, the lists and objects as JSON.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Mapping
from typing import Any

from ..analysis import Report
from ..dataset_fit import output_anchors, output_task

TASK_KEY = "convas.task"
CLASSES_KEY = "convas.classes"
PREPROCESS_KEY = "convas.preprocess"
ANCHORS_KEY = "convas.anchors"
DECODE_KEY = "convas.decode"


def onnx_metadata(report: Report, checkpoint: Mapping[str, Any] | None = None
                  ) -> dict[str, str]:
    """The ``metadata_props`` of an export of the analysed design ``report``.

    With ``checkpoint`` (the dict of a run's ``model.pt`` whose weights the export
    carries) all three keys come from it: the task, class names and normalisation the
    model was trained with. Without one (fresh weights), only what the design itself
    says is written, and nothing is made up:

    - ``convas.task`` from the Output block's ``task``;
    - ``convas.preprocess`` with ``channels`` and ``size`` from the Input block, and no
      ``mean``/``std``: those are the training set's statistics, unknown until a run
      (a guess such as ImageNet's would feed the model wrongly scaled images without a
      sign of it), and untrained weights need no particular scaling anyway;
    - no ``convas.classes``: the Output knows only how many classes there are, and
      numbers in place of names would look like names to the program reading them.

    A design with several Inputs gets no ``convas.preprocess`` without a checkpoint:
    one image size would describe only one of them.

    A detector (SPEC §7) also gets ``convas.anchors``, the design's Output anchors
    (what ``convas predict`` decodes with), and ``convas.decode``
    (:func:`engine.export.detection_source.decode_description`): the ONNX graph ends
    at the raw head, so a program needs both to find the boxes.
    """
    data = checkpoint or {}
    task = data.get("task") or output_task(report)
    metadata = {TASK_KEY: str(task)}
    if data.get("classes") is not None:
        metadata[CLASSES_KEY] = json.dumps([str(c) for c in data["classes"]])
    preprocess = data.get("preprocess")
    if preprocess is None and len(report.input_ids) == 1:
        shape = report.nodes[report.input_ids[0]].output_shape
        if shape is not None and len(shape) == 3:
            preprocess = {"channels": int(shape[0]), "size": [int(shape[1]), int(shape[2])]}
    if preprocess is not None:
        metadata[PREPROCESS_KEY] = json.dumps(_plain(preprocess))
    if task == "detection":
        metadata.update(_detection_metadata(report))
    return metadata


def _detection_metadata(report: Report) -> dict[str, str]:
    from ..detection.yolo import YoloHead
    from .detection_source import decode_description

    anchors = output_anchors(report)
    shape = report.output_shape
    num_classes = grid = None
    if shape is not None and len(shape) == 3:
        grid = (int(shape[1]), int(shape[2]))
        with contextlib.suppress(ValueError):  # not A·(5+K) channels: no K to tell
            num_classes = YoloHead.from_output(shape, len(anchors)).num_classes
    return {ANCHORS_KEY: json.dumps(_plain(anchors)),
            DECODE_KEY: json.dumps(decode_description(len(anchors), num_classes, grid))}


def _plain(value: Any) -> Any:
    """JSON-ready numbers and lists (a checkpoint may hold tuples or numpy numbers)."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, bool | int | float | str) or value is None:
        return value
    return float(value) if hasattr(value, "__float__") else str(value)
