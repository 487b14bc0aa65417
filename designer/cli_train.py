"""``convas train`` (SPEC §4), with ``--init`` to fine-tune from a checkpoint's weights
(SPEC §8); ``convas export`` is in cli_export.py."""

from __future__ import annotations

import argparse
import os
import signal
import sys
from pathlib import Path
from typing import TextIO

from engine import Graph, GraphError
from engine.train_config import setting

from .run_folders import run_stem

EXIT_OK, EXIT_INVALID, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


def add_train_parser(sub: argparse._SubParsersAction, positive_int, positive_float) -> None:
    t = sub.add_parser("train", help="train a graph headless, with a progress bar",
                       description="Train FILE on a dataset; write model.pt and metrics.csv "
                                   "to --out. Settings not given come from the file's "
                                   "'training' object, then Convas's defaults.")
    t.add_argument("file", metavar="FILE")
    t.add_argument("--dataset", metavar="NAME_OR_PATH",
                   help=", ".join(setting("dataset").choices) + ", or a folder / .npz")
    t.add_argument("--epochs", type=positive_int, metavar="N")
    t.add_argument("--batch-size", type=positive_int, metavar="N")
    t.add_argument("--lr", type=positive_float, metavar="X", help="learning rate")
    for key in ("optimizer", "schedule", "device", "precision"):  # TrainConfig owns the choices
        t.add_argument(f"--{key}", choices=setting(key).choices, help=setting(key).doc)
    t.add_argument("--compile", action="store_true", default=None,
                   help="torch.compile the model (worth it on CUDA)")
    t.add_argument("--seed", type=int)
    t.add_argument("--limit", type=positive_int, metavar="N",
                   help="use at most N training images")
    t.add_argument("--download", action="store_true",
                   help="download mnist / fashion-mnist / cifar10 if missing (needs network)")
    t.add_argument("--resume", metavar="CKPT", help="continue from a checkpoint (model.pt)")
    t.add_argument("--init", metavar="CKPT",
                   help="start a new run from a checkpoint's weights (fine-tuning): nodes "
                        "whose id and shapes match take them, the others start fresh")
    t.add_argument("--out", metavar="DIR", help="output folder (default runs/NAME-TIMESTAMP)")


def _default_out(graph: Graph) -> Path:
    return Path("runs") / run_stem(graph.name)


def train(args: argparse.Namespace, err: TextIO | None = None) -> int:
    from engine.data import DatasetError, download
    from engine.train import Trainer
    from engine.train_config import ConfigError, TrainConfig
    from engine.train_events import DoneEvent, ReadyEvent

    from .progress import ProgressPrinter

    err = err or sys.stderr
    init = getattr(args, "init", None)
    if init and args.resume:
        err.write("convas: --init and --resume cannot go together: --resume continues a run "
                  "with its own weights, --init starts a new run from a checkpoint's weights; "
                  "give one of them\n")
        return EXIT_USAGE
    try:
        graph = Graph.load(args.file)
        config = TrainConfig.from_dict(
            graph.training, dataset=args.dataset, epochs=args.epochs,
            batch_size=args.batch_size, lr=args.lr, optimizer=args.optimizer,
            schedule=args.schedule, device=args.device, precision=args.precision,
            compile=args.compile, seed=args.seed, limit=args.limit, init=init)
        if args.download:
            download(config.dataset, progress=_download_progress(err))
    except (GraphError, ConfigError, DatasetError) as exc:
        err.write(f"convas: {exc}\n")
        return EXIT_INVALID
    out = Path(args.out) if args.out else _default_out(graph)
    progress = ProgressPrinter(err)

    def report(event) -> None:
        if isinstance(event, ReadyEvent) and (event.init_loaded or event.init_fresh):
            err.write(init_line(config.init, event.init_loaded, event.init_fresh))
        progress(event)

    trainer = Trainer(graph, config, callback=report, out_dir=out, resume=args.resume)
    previous = _stop_on_first_interrupt(trainer, err)
    try:
        err.write(f"training {graph.name} on {config.dataset} for {config.epochs} epochs "
                  f"(batch {config.batch_size}, {config.optimizer}, lr {config.lr:g}); "
                  f"output in {out}\n")
        result = trainer.run()
    finally:
        signal.signal(signal.SIGINT, previous)
        progress.close()
    if isinstance(result, DoneEvent):
        summary = f"; {result.summary()}" if result.summary() else ""
        where = f"{out / 'model.pt'} and {out / 'metrics.csv'}" if result.checkpoint else "nothing"
        err.write(f"{'stopped' if result.stopped else 'done'} after {result.epochs_completed} "
                  f"epoch(s){summary}; saved {where}\n")
        return EXIT_INTERRUPTED if result.stopped else EXIT_OK
    err.write(f"convas: training failed: {result.reason}\n")
    if result.details and os.environ.get("CONVAS_DEBUG"):
        err.write(result.details)
    return EXIT_INVALID


def init_line(source: str, loaded: list[str], fresh: list[str]) -> str:
    """The line before step one that says what a fine-tuning run starts from."""
    line = f"weights from {source}: loaded {_names(loaded)}"
    return line + (f"; fresh {_names(fresh)}" if fresh else "; no node starts fresh") + "\n"


def _names(ids: list[str], shown: int = 12) -> str:
    more = f" and {len(ids) - shown} more" if len(ids) > shown else ""
    return (f"{len(ids)} node{'s' if len(ids) != 1 else ''} ({', '.join(ids[:shown])}{more})"
            if ids else "no node")


def _stop_on_first_interrupt(trainer, err: TextIO):
    """Ctrl+C once stops after the current step and saves; twice aborts at once."""

    def handler(signum, frame):
        if trainer._stop.is_set():
            raise KeyboardInterrupt
        err.write("\nstopping after this step (Ctrl+C again to abort)…\n")
        trainer.stop()

    try:
        return signal.signal(signal.SIGINT, handler)
    except ValueError:  # not the main thread (tests): nothing to install
        return signal.getsignal(signal.SIGINT)


def _download_progress(err: TextIO):
    def show(done: int, total: int) -> None:
        if total and err.isatty():
            err.write(f"\rdownloading… {done / 2**20:.1f} / {total / 2**20:.1f} MiB")
            if done >= total:
                err.write("\n")
    return show
