"""A Trainer in a child process, reporting over a pipe.

Why a process and not a thread of the caller: on a CPU, a small network's training
step is mostly Python between short tensor operations, and in the GUI's process every
redraw holds the interpreter lock the step is waiting for. Measured with
``benchmarks/live_overhead.py`` on a 2-core machine, a training thread beside the live
views ran at 0.73–0.75 of headless speed; a child process has an interpreter of its own.
It also keeps the design safe when training dies hard (a driver crash, the kernel's
out-of-memory killer): the child goes, the editor stays.

The protocol is plain data both ways: the child sends the pickled events of
``train_events``; the parent sends ``(command, argument)`` tuples (stop, pause,
resume, probe_nodes, probe_index). If the parent goes away, the child stops at the
next step and saves its checkpoint. The child loads the plug-in blocks from the
folders the parent loaded them from, so a design that uses one trains as it analyses.
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import threading
import traceback
from collections.abc import Callable, Iterable, Mapping
from multiprocessing.connection import Connection
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .data import Dataset
from .graph import Graph
from .plugins import load_plugins, loaded_folders
from .train_config import TrainConfig
from .train_events import Event, FailedEvent

if TYPE_CHECKING:
    from .train import Trainer

COMMANDS = ("stop", "pause", "resume", "probe_nodes", "probe_index")


class TrainingProcess:
    """Start training ``graph`` in a spawned child at once; talk to it from one thread."""

    def __init__(self, graph: Graph, config: TrainConfig, *, out_dir: str | Path | None = None,
                 resume: str | Path | None = None, dataset: Dataset | None = None,
                 probe_nodes: Iterable[str] = (), report_interval: float = 0.1,
                 threads: int | None = None) -> None:
        # spawn, not fork: the parent may be a Qt application with threads of its own
        ctx = mp.get_context("spawn")
        self._events, child_events = ctx.Pipe(duplex=False)
        child_commands, self._commands = ctx.Pipe(duplex=False)
        self._lock = threading.Lock()
        self._ranks = config.nproc != 1
        self._process = ctx.Process(
            target=_child_main, name="convas-training", daemon=True,
            args=(child_events, child_commands, graph.dumps(), graph.name, config.to_dict(),
                  None if out_dir is None else str(out_dir),
                  None if resume is None else str(resume), dataset, tuple(probe_nodes),
                  report_interval, threads, loaded_folders()))
        self._process.start()
        child_events.close()      # the parent keeps only its own ends, so EOF is seen
        child_commands.close()

    # ---- commands (any thread) ---------------------------------------------------------

    def send(self, command: str, argument: Any = None) -> bool:
        """False when the child is gone (its end of the pipe is closed)."""
        if command not in COMMANDS:
            raise ValueError(f"unknown command {command!r}")
        with self._lock:
            try:
                self._commands.send((command, argument))
                return True
            except (OSError, ValueError):
                return False

    def stop(self) -> None:
        self.send("stop")

    # ---- events (one reading thread) ----------------------------------------------------

    def poll(self, timeout: float) -> bool:
        try:
            return self._events.poll(timeout)
        except (OSError, ValueError):
            return True  # recv() will raise EOFError

    def recv(self) -> Event:
        """The next event; EOFError once the child has closed its end."""
        try:
            return self._events.recv()
        except (OSError, ValueError) as exc:
            raise EOFError(str(exc)) from exc

    # ---- the process -------------------------------------------------------------------

    @property
    def pid(self) -> int | None:
        """The child's process id (in a multi-process run, the ranks' launcher)."""
        return self._process.pid

    @property
    def exitcode(self) -> int | None:
        return self._process.exitcode

    def is_alive(self) -> bool:
        return self._process.is_alive()

    def join(self, timeout: float | None = None) -> bool:
        self._process.join(timeout)
        return not self._process.is_alive()

    def kill(self, grace: float = 10.0) -> None:
        """End the child now. A multi-process run's child first gets SIGTERM and
        ``grace`` seconds, in which torch's launcher ends the ranks; then SIGKILL (the
        ranks die with it, see engine.train_ranks)."""
        if self._ranks and self._process.is_alive():
            self._process.terminate()
            self._process.join(grace)
        if self._process.is_alive():
            self._process.kill()
        self._process.join(5)

    def close(self) -> None:
        for conn in (self._events, self._commands):
            conn.close()


def died_event(exitcode: int | None, checkpoint: Path | None = None) -> FailedEvent:
    """What to say when the child ended without a final event."""
    how = (f"was killed by signal {-exitcode}" if exitcode is not None and exitcode < 0
           else f"ended with exit code {exitcode}")
    hint = (" (signal 9 is usually the system running out of memory: try a smaller batch "
            "size)" if exitcode == -9 else "")
    return FailedEvent("error", f"the training process {how} before finishing{hint}; "
                       "the design is unchanged, and the last checkpoint, if any, is kept",
                       checkpoint)


def _child_main(events: Connection, commands: Connection, graph_text: str, graph_name: str,
                config: dict[str, Any], out_dir: str | None, resume: str | None,
                dataset: Dataset | None, probe_nodes: tuple[str, ...],
                report_interval: float, threads: int | None,
                plugin_folders: list[str] | None = None) -> None:
    import torch

    if threads:
        torch.set_num_threads(threads)
    if plugin_folders is not None:  # the parent's plug-in blocks (SPEC §9), reported there
        load_plugins(plugin_folders)
    lock = threading.Lock()

    def send(event: Event) -> None:  # the training thread, and this one for failures
        with lock:
            events.send(event)

    job = dict(graph_text=graph_text, graph_name=graph_name, config=config, out_dir=out_dir,
               resume=resume, dataset=dataset, probe_nodes=probe_nodes,
               report_interval=report_interval, threads=threads, plugin_folders=plugin_folders)
    if config.get("nproc", 1) != 1:  # several processes: this one launches and relays
        from .train_ranks import run_ranks

        try:
            run_ranks(send, commands, job)
        except BaseException as exc:  # noqa: BLE001 - said to the parent, not lost
            with contextlib.suppress(OSError, ValueError):
                send(FailedEvent("error", f"unexpected {type(exc).__name__}: {exc}",
                                 details=traceback.format_exc()))
        finally:
            events.close()
        return

    trainer = trainer_for(job, TrainConfig.from_dict(config), send, commands)
    try:
        trainer.run()
    except BaseException as exc:  # noqa: BLE001 - e.g. the parent vanished mid-send
        try:
            send(FailedEvent("error", f"unexpected {type(exc).__name__}: {exc}",
                             details=traceback.format_exc()))
        except (OSError, ValueError):
            pass
    finally:
        events.close()


def trainer_for(job: Mapping[str, Any], config: TrainConfig, send: Callable[[Event], None],
                commands: Connection | None) -> Trainer:
    """The Trainer of ``job`` (:func:`_child_main`'s arguments by name), reporting through
    ``send`` and applying ``commands`` on a thread of its own: the one child and each rank
    of a multi-process run (engine.train_ranks; only rank 0 has commands) start it alike."""
    from .train import Trainer

    trainer = Trainer(Graph.loads(job["graph_text"], job["graph_name"]), config,
                      callback=send, out_dir=job["out_dir"], resume=job["resume"],
                      dataset=job["dataset"], probe_nodes=job["probe_nodes"],
                      report_interval=job["report_interval"])
    if commands is not None:
        threading.Thread(target=_listen, args=(commands, trainer), daemon=True).start()
    return trainer


def _listen(commands: Connection, trainer: Any) -> None:
    """Apply the parent's commands; a closed pipe means the parent is gone: stop. (Rank 0
    of a multi-process run listens to its launcher's relay the same way.)"""
    while True:
        try:
            command, argument = commands.recv()
        except (EOFError, OSError):
            trainer.stop()
            return
        if command == "stop":
            trainer.stop()
        elif command == "pause":
            trainer.pause()
        elif command == "resume":
            trainer.resume()
        elif command == "probe_nodes":
            trainer.set_probe_nodes(argument)
        elif command == "probe_index":
            trainer.set_probe_index(argument)

