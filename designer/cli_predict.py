"""``convas predict`` (SPEC §7): a thin front on ``engine.predict``.

One JSON array with ``--json``, else a readable line per image. Exit status as in §4:
1 with a message naming the file for an unreadable image, a missing file or a
checkpoint that does not fit the design; 2 for usage errors (argparse).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, TextIO

from engine import Graph, GraphError

EXIT_OK, EXIT_INVALID = 0, 1


def _top(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text} must be at least 1")
    return value


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"{text} must be between 0 and 1")
    return value


def add_predict_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("predict", help="run a trained design on image files",
                       description="Run FILE with the trained weights of --weights on images "
                                   "(files, or folders of them), preprocessed as in training: "
                                   "the top classes of each image, a mask PNG per image "
                                   "for a segmentation design, or the boxes a detector "
                                   "finds (in the image's own pixels).")
    p.add_argument("file", metavar="FILE", help="a .convas.json graph")
    p.add_argument("images", nargs="+", metavar="IMAGE_OR_FOLDER")
    p.add_argument("--weights", required=True, metavar="CKPT",
                   help="a checkpoint written by convas train (model.pt)")
    p.add_argument("--json", action="store_true", help="print one JSON array instead")
    p.add_argument("--out", metavar="DIR",
                   help="segmentation: write the masks here (default: beside each image)")
    p.add_argument("--top", type=_top, default=5, metavar="K",
                   help="classification: the K most probable classes (default 5)")
    p.add_argument("--score-threshold", type=_fraction, default=0.0, metavar="X",
                   help="classification: leave out classes with a probability below X; "
                        "detection: leave out boxes scoring below X (default 0.25)")


def predict(args: argparse.Namespace, out: TextIO | None = None,
            err: TextIO | None = None) -> int:
    """Predict as ``args`` say and print the results; 1 with a message when a file is
    missing or unreadable or the weights do not fit."""
    from engine.predict import PredictError, image_files, load_predictor
    from engine.predict import predict as run

    out = out or sys.stdout
    err = err or sys.stderr
    try:
        graph = Graph.load(args.file)
        images = image_files(args.images)
        predictor = load_predictor(graph, args.weights)
        results = run(predictor, images, top=args.top, score_threshold=args.score_threshold,
                      out_dir=Path(args.out) if args.out else None)
    except (GraphError, PredictError) as exc:
        err.write(f"convas: {exc}\n")
        return EXIT_INVALID
    if args.json:
        out.write(json.dumps(results, indent=1) + "\n")
    else:
        for result in results:
            out.write(describe(result) + "\n")
    return EXIT_OK


def describe(result: dict[str, Any]) -> str:
    """One readable line: ``cat.png: X 97.1 %, O 2.3 %``,
    ``img.png: mask img.mask.png (X, O)`` or
    ``img.png: 2 objects: X 0.97 at (3, 4, 20, 22), O 0.88 at (30, 2, 61, 40)``."""
    name = Path(result["image"]).name
    if "top" in result:
        tops = ", ".join(f"{t['class']} {100 * t['probability']:.1f} %" for t in result["top"])
        return f"{name}: {tops or 'no class above the threshold'}"
    if "detections" in result:
        found = result["detections"]
        if not found:
            return f"{name}: no object above the score threshold"
        boxes = ", ".join(f"{d['class']} {d['score']:.2f} at "
                          f"({', '.join(f'{v:.0f}' for v in d['box'])})" for d in found)
        return f"{name}: {len(found)} object{'s' if len(found) != 1 else ''}: {boxes}"
    present = ", ".join(result["classes_present"])
    return f"{name}: mask {result['mask']} ({present})"
