"""``convas train`` (SPEC §4), with ``--init`` to fine-tune from a checkpoint's weights
(SPEC §8) and ``--nproc`` to train on several processes (SPEC §10); ``convas export``
is in cli_export.py.

With ``--nproc N`` this process only checks the settings and hands the run to torch's
launcher (engine.distributed.launch), which starts N workers of ``convas train``; a
``convas train`` started by torchrun (``RANK``/``WORLD_SIZE``/``LOCAL_RANK`` set) is
such a worker and joins the job.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from pathlib import Path
from typing import TextIO

from engine import Graph, GraphError, distributed
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
    t.add_argument("--nproc", type=_nproc, metavar="N|gpu",
                   help="train on N processes of this machine (gloo on CPU), or 'gpu' for "
                        "one per visible GPU (NCCL), through torch.distributed.run; "
                        "--batch-size is the global batch")
    t.add_argument("--sync-bn", action="store_true", default=None,
                   help="with several GPU processes, BatchNorm over the global batch")


def _nproc(text: str) -> int | str:
    if text == "gpu":
        return text
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of processes or "
                                         f"'gpu'") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text} processes: give at least 1")
    return value


def _nproc_setting(args: argparse.Namespace) -> int | None:
    """``--nproc`` as the training setting ``nproc`` (0: one per GPU), so the flag and
    the file's (or the application's) choice are one setting."""
    nproc = getattr(args, "nproc", None)
    return 0 if nproc == "gpu" else nproc


def _default_out(graph: Graph) -> Path:
    return Path("runs") / run_stem(graph.name)


def train(args: argparse.Namespace, err: TextIO | None = None) -> int:
    from engine.data import DatasetError, download
    from engine.train_config import ConfigError, TrainConfig

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
            compile=args.compile, seed=args.seed, limit=args.limit, init=init,
            sync_bn=getattr(args, "sync_bn", None), nproc=_nproc_setting(args))
        if args.download and distributed.current().main:
            download(config.dataset, progress=_download_progress(err))
    except (GraphError, ConfigError, DatasetError) as exc:
        err.write(f"convas: {exc}\n")
        return EXIT_INVALID
    out = Path(args.out) if args.out else _default_out(graph)
    if distributed.launched():
        return _worker(args, graph, config, out, err)
    if getattr(args, "nproc", None) is not None or config.nproc != 1:
        return _launch(args, config, out, err)
    return _run(args, graph, config, out, err)


def _run(args: argparse.Namespace, graph: Graph, config, out: Path, err: TextIO,
         world=None) -> int:
    """Train in this process (one of several when ``world`` is distributed)."""
    from engine.train import Trainer
    from engine.train_events import DoneEvent, ReadyEvent

    from .progress import ProgressPrinter

    world = world or distributed.World()
    progress = ProgressPrinter(err)

    def report(event) -> None:
        if isinstance(event, ReadyEvent) and (event.init_loaded or event.init_fresh):
            err.write(init_line(config.init, event.init_loaded, event.init_fresh))
        progress(event)

    trainer = Trainer(graph, config, callback=report, out_dir=out, resume=args.resume)
    previous = _stop_on_first_interrupt(trainer, err, world.distributed)
    try:
        if world.main:
            on = f" on {world.size} processes" if world.distributed else ""
            err.write(f"training {graph.name} on {config.dataset} for {config.epochs} epochs"
                      f"{on} (batch {config.batch_size}, {config.optimizer}, lr "
                      f"{config.lr:g}); output in {out}\n")
        result = trainer.run()
    finally:
        signal.signal(signal.SIGINT, previous)
        progress.close()
    if not world.main:  # rank 0 says how it ended; the others only why they failed
        if isinstance(result, DoneEvent):
            return EXIT_INTERRUPTED if result.stopped else EXIT_OK
        err.write(f"convas (rank {world.rank}): training failed: {result.reason}\n")
        distributed.record_failure(result.reason)
        return EXIT_INVALID
    if isinstance(result, DoneEvent):
        summary = f"; {result.summary()}" if result.summary() else ""
        where = f"{out / 'model.pt'} and {out / 'metrics.csv'}" if result.checkpoint else "nothing"
        err.write(f"{'stopped' if result.stopped else 'done'} after {result.epochs_completed} "
                  f"epoch(s){summary}; saved {where}\n")
        return EXIT_INTERRUPTED if result.stopped else EXIT_OK
    err.write(f"convas: training failed: {result.reason}\n")
    if result.details and os.environ.get("CONVAS_DEBUG"):
        err.write(result.details)
    if world.distributed:
        distributed.record_failure(result.reason)
    return EXIT_INVALID


def _worker(args: argparse.Namespace, graph: Graph, config, out: Path, err: TextIO) -> int:
    """One process of a job torchrun started: join the process group, train, leave."""
    from engine.device import DeviceError, resolve_device

    try:
        kind = resolve_device(config.device).type
        world = distributed.setup(kind)
    except (DeviceError, RuntimeError, ValueError) as exc:
        err.write(f"convas (rank {os.environ.get('RANK')}): cannot join the run: {exc}\n")
        distributed.record_failure(str(exc))
        return EXIT_INVALID
    code = EXIT_INVALID
    try:
        code = _run(args, graph, config, out, err, world)
    finally:
        # after a run every rank ended alike, wait for the others; never after a failure
        distributed.teardown(wait=code in (EXIT_OK, EXIT_INTERRUPTED))
    return code


def _launch(args: argparse.Namespace, config, out: Path, err: TextIO) -> int:
    """``--nproc``: start the workers through torch's launcher and report how it ended."""
    try:  # --nproc or the file's nproc; 0 is one process per GPU
        nproc, device = distributed.plan(config.nproc, config.device,
                                         distributed.visible_gpus())
    except ValueError as exc:
        err.write(f"convas: {exc}\n")
        return EXIT_INVALID
    err.write(f"starting {nproc} processes ({'NCCL' if device == 'cuda' else 'gloo'}) "
              f"through torch.distributed.run\n")
    return distributed.launch(_worker_args(args, out, device), nproc, err=err,
                              checkpoint=out / "model.pt")


def _worker_args(args: argparse.Namespace, out: Path, device: str) -> list[str]:
    """The ``train`` command line each worker runs: this one's settings, a fixed --out
    (a default one holds the time, which could differ between workers) and the device."""
    argv = ["train", str(args.file), "--out", str(out), "--device", device]
    for flag, value in (("--dataset", args.dataset), ("--epochs", args.epochs),
                        ("--batch-size", args.batch_size), ("--optimizer", args.optimizer),
                        ("--schedule", args.schedule), ("--precision", args.precision),
                        ("--seed", args.seed), ("--limit", args.limit),
                        ("--resume", args.resume), ("--init", getattr(args, "init", None))):
        if value is not None:
            argv += [flag, str(value)]
    if args.lr is not None:
        argv += ["--lr", repr(args.lr)]
    argv += [flag for flag, on in (("--compile", args.compile),
                                   ("--sync-bn", getattr(args, "sync_bn", None))) if on]
    return argv


def init_line(source: str, loaded: list[str], fresh: list[str]) -> str:
    """The line before step one that says what a fine-tuning run starts from."""
    line = f"weights from {source}: loaded {_names(loaded)}"
    return line + (f"; fresh {_names(fresh)}" if fresh else "; no node starts fresh") + "\n"


def _names(ids: list[str], shown: int = 12) -> str:
    more = f" and {len(ids) - shown} more" if len(ids) > shown else ""
    return (f"{len(ids)} node{'s' if len(ids) != 1 else ''} ({', '.join(ids[:shown])}{more})"
            if ids else "no node")


def _stop_on_first_interrupt(trainer, err: TextIO, distributed_run: bool = False):
    """Ctrl+C once stops after the current step and saves; twice aborts at once. A
    worker of a distributed run gets Ctrl+C twice (from the terminal, then forwarded by
    the launcher) and never aborts: the launcher kills it if it takes too long."""

    def handler(signum, frame):
        if trainer._stop.is_set():
            if distributed_run:
                return
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
