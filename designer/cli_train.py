"""``convas train`` (SPEC §4); ``convas export`` is in cli_export.py."""

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

EXIT_OK, EXIT_INVALID, EXIT_INTERRUPTED = 0, 1, 130


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
    t.add_argument("--out", metavar="DIR", help="output folder (default runs/NAME-TIMESTAMP)")


def _default_out(graph: Graph) -> Path:
    return Path("runs") / run_stem(graph.name)


def train(args: argparse.Namespace, err: TextIO | None = None) -> int:
    from engine.data import DatasetError, download
    from engine.train import Trainer
    from engine.train_config import ConfigError, TrainConfig
    from engine.train_events import DoneEvent

    from .progress import ProgressPrinter

    err = err or sys.stderr
    try:
        graph = Graph.load(args.file)
        config = TrainConfig.from_dict(
            graph.training, dataset=args.dataset, epochs=args.epochs,
            batch_size=args.batch_size, lr=args.lr, optimizer=args.optimizer,
            schedule=args.schedule, device=args.device, precision=args.precision,
            compile=args.compile, seed=args.seed, limit=args.limit)
        if args.download:
            download(config.dataset, progress=_download_progress(err))
    except (GraphError, ConfigError, DatasetError) as exc:
        err.write(f"convas: {exc}\n")
        return EXIT_INVALID
    out = Path(args.out) if args.out else _default_out(graph)
    progress = ProgressPrinter(err)
    trainer = Trainer(graph, config, callback=progress, out_dir=out, resume=args.resume)
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
