"""The ``convas`` command line (SPEC §4).

``convas [FILE]`` opens the application; ``convas summary FILE`` prints the analysis.
Exit status: 0 success, 1 invalid graph or file (the message names the node and the
fix, never a traceback), 2 usage error.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import TextIO

from engine import Graph, GraphError, analyze
from engine.analysis import OPTIMIZER_STATES, PRECISIONS
from engine.dataset_fit import output_task

from .cli_export import add_export_parser, export
from .cli_import import add_import_parser, run_import
from .cli_predict import add_predict_parser, predict
from .cli_train import add_train_parser, train
from .summary_text import format_summary

EXIT_OK, EXIT_INVALID, EXIT_USAGE = 0, 1, 2
COMMANDS = ("summary", "train", "export", "predict", "import")


class _Parser(argparse.ArgumentParser):
    """argparse exits with 2 on usage errors already; keep its message short."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="convas", description="Design, train and export CNNs as node graphs.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    s = sub.add_parser("summary", help="print the per-layer table and totals of a graph file",
                       description="Print output shape, parameters, MACs and receptive field "
                                   "of every block, with totals and a training-memory estimate.")
    s.add_argument("file", metavar="FILE", help="a .convas.json graph")
    s.add_argument("--json", action="store_true", help="print one JSON object instead")
    s.add_argument("--expand", action="store_true",
                   help="also list the blocks inside each block made of blocks, as "
                        "instance/inner_id")
    s.add_argument("--batch-size", type=_positive_int, default=None, metavar="N",
                   help="batch size for the memory estimate (default: the file's, else 64)")
    s.add_argument("--precision", choices=tuple(PRECISIONS), default="fp32",
                   help="activation precision for the memory estimate (default fp32)")
    s.add_argument("--optimizer", choices=tuple(OPTIMIZER_STATES), default=None,
                   help="optimizer for the memory estimate (default: the file's, else adam)")
    s.add_argument("--dataset", default=None, metavar="NAME_OR_PATH",
                   help="detection: how well the Output's anchors fit this dataset's boxes "
                        "(mean best IoU) and the anchors k-means would choose")
    add_train_parser(sub, _positive_int, _positive_float)
    add_export_parser(sub)
    add_predict_parser(sub)
    add_import_parser(sub)
    return parser


def _positive(kind: type, what: str):
    """An argparse type: a finite number of ``kind`` above zero."""

    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {what}") from None
        if not 0 < value < float("inf"):
            raise argparse.ArgumentTypeError(f"{text} must be a positive {what.split()[-1]}")
        return value

    return parse


_positive_int = _positive(int, "an integer")
_positive_float = _positive(float, "a number")


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or (argv[0] not in COMMANDS and argv[0] not in ("-h", "--help")):
        return _open_app(argv)
    args = _parser().parse_args(argv)
    if args.command in COMMANDS:
        load_plugins_reporting(sys.stderr)
    if args.command == "summary":
        return summary(args.file, as_json=args.json, batch_size=args.batch_size,
                       precision=args.precision, optimizer=args.optimizer,
                       expand=args.expand, dataset=args.dataset)
    if args.command == "train":
        return train(args)
    if args.command == "export":
        return export(args)
    if args.command == "predict":
        return predict(args)
    if args.command == "import":
        return run_import(args)
    _parser().print_help()
    return EXIT_USAGE


def load_plugins_reporting(err: TextIO) -> None:
    """Load the plug-in blocks (SPEC §9); name each broken one and go on without it."""
    from engine.plugins import load_plugins

    for problem in load_plugins():
        err.write(f"convas: plug-in not loaded: {problem}\n")


def _open_app(argv: list[str]) -> int:
    parser = _Parser(prog="convas", usage="convas [FILE] | convas COMMAND ...",
                     description="Open the Convas application, with FILE if given. "
                                 f"Commands: {', '.join(COMMANDS)} (convas COMMAND -h).")
    parser.add_argument("file", nargs="?", metavar="FILE")
    parser.add_argument("--screenshot", metavar="OUT.png",
                        help="render the window at 1600×1000 to a PNG and exit")
    args = parser.parse_args(argv)
    from .app import run_app

    return run_app(args.file, screenshot=args.screenshot)


def summary(path: str, as_json: bool = False, batch_size: int | None = None,
            precision: str = "fp32", optimizer: str | None = None,
            out: TextIO | None = None, err: TextIO | None = None,
            expand: bool = False, dataset: str | None = None) -> int:
    """Print the analysis of ``path``; 1 when the file or the graph is invalid. For a
    detector also its anchors, and with ``dataset`` how well they fit its boxes."""
    out = out or sys.stdout
    err = err or sys.stderr
    try:
        graph = Graph.load(path)
    except GraphError as exc:
        _print_errors(exc, err, path)
        return EXIT_INVALID
    report = analyze(graph)
    batch = batch_size or _setting(graph, "batch_size", int, 64)
    opt = optimizer or _setting(graph, "optimizer", str, "adam")
    if opt not in OPTIMIZER_STATES:
        opt = "adam"
    momentum = graph.training.get("momentum", 0.9)
    momentum = momentum if isinstance(momentum, int | float) else 0.9
    memory = report.memory(batch, precision, opt, momentum) if report.ok else None
    if as_json:
        data = report.to_dict()
        if expand:
            from engine.user_blocks import expanded

            for row in data["nodes"]:
                info = report.nodes[row["id"]]
                if info.inner is not None:
                    row["body"] = [dict(i.to_dict(), id=p) for p, i
                                   in expanded(info.inner, row["id"] + "/")]
        if memory is not None:
            data["memory"] = memory.to_dict()
        json.dump(data, out, indent=2)
        out.write("\n")
    else:
        out.write(format_summary(report, memory, expand))
        if output_task(report) == "detection":
            from engine.data.sets import DatasetError

            try:
                out.write(_anchor_lines(report, dataset, graph))
            except DatasetError as exc:
                err.write(f"convas: {exc}\n")
                return EXIT_INVALID
    if not report.ok:
        _print_errors(GraphError(report.errors), err, path)
        return EXIT_INVALID
    return EXIT_OK


def _anchor_lines(report, dataset: str | None, graph: Graph) -> str:
    """The detector's anchors; with a dataset, the mean over its training boxes of each
    box's best IoU with an anchor (SPEC §7), and k-means' anchors for comparison."""
    from engine.tasks import output_anchors

    anchors = output_anchors(report)
    text = ", ".join(f"{w:g}×{h:g}" for w, h in anchors)
    lines = f"Anchors:          {len(anchors)} ({text})\n"
    if dataset is None:
        return lines
    from engine.data import DatasetError, load_dataset

    from .anchor_stats import box_sizes, fit_anchors

    shapes = [report.nodes[i].output_shape for i in report.input_ids]
    data = load_dataset(dataset, image_shape=shapes[0] if shapes else None,
                        options=graph.training.get("dataset_options") or None
                        if dataset == graph.training.get("dataset") else None)
    if getattr(data, "task", "classification") != "detection":
        raise DatasetError(f"dataset '{data.name}' has no boxes: name a detection dataset "
                           f"(e.g. shapes-det) for --dataset")
    rows = data.train.y.numpy()
    try:
        fit = fit_anchors(rows, anchors, data.name)
    except ValueError:
        if len(box_sizes(rows)):   # boxes, but fewer sizes than anchors: k-means' reason
            raise
        return lines + f"Anchor fit:       dataset '{data.name}' has no training boxes\n"
    fitted = ", ".join(f"{w:g}×{h:g}" for w, h in fit.fitted)
    return lines + (f"Anchor fit:       mean best IoU {fit.before:.3f} "
                    f"over {fit.boxes:,} training boxes of {data.name}; k-means anchors "
                    f"{fitted} would give {fit.after:.3f}\n")


def _setting(graph: Graph, key: str, kind: type, default):
    value = graph.training.get(key)
    return value if isinstance(value, kind) and not isinstance(value, bool) and value else default


def _print_errors(exc: GraphError, err: TextIO, path: str) -> None:
    n = len(exc.errors)
    err.write(f"convas: {path}: {n} problem{'s' if n != 1 else ''}\n")
    for e in exc.errors:
        err.write(f"  {e}\n")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
