"""Training on several processes from the application (SPEC §10): the training child of
``engine.train_process`` becomes the launcher of N ranks.

Why this shape: the application talks to one child over two pipes (events out,
commands in), and that protocol should not care how many processes train. So the
child starts the ranks through torch's elastic launcher (what ``torchrun --standalone``
runs: a rendezvous on a free port) and relays: rank 0 connects back to a
``multiprocessing.connection`` Listener the child opened (address and a random key in
the job file each rank reads), sends its events there and takes the commands from
there; the other ranks report nothing (the Trainer keeps them quiet). Stop reaches rank
0, and the stop flag the Trainer exchanges at every step stops the others at the same
step. Pause is not passed on: a paused rank 0 would leave the others waiting in a
collective until its timeout ends the run.

Nothing may be left behind: the parent ends a run it cannot stop with SIGTERM to the
child, on which torch's launcher terminates the ranks (and kills them if they linger);
should the child die anyway, each rank has asked Linux to kill it with its launcher
(``PR_SET_PDEATHSIG``). When the parent goes away the child asks rank 0 to stop and
terminates itself if the run has not ended within :data:`STOP_GRACE` seconds. A failed
rank is named with its reason from the launcher's failure report.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import signal
import sys
import tempfile
import threading
from collections.abc import Callable
from multiprocessing.connection import Client, Connection, Listener
from pathlib import Path
from typing import Any

from .train_events import DoneEvent, Event, FailedEvent

STOP_GRACE = 30.0     # seconds the ranks get to stop after the application went away
RELAYED = ("stop", "probe_nodes", "probe_index")  # pause/resume are refused (see above)


def run_ranks(send: Callable[[Event], None], commands: Connection, job: dict[str, Any]) -> None:
    """Run ``job`` (the child's arguments as a dict) on ``job['config']['nproc']`` ranks
    and send the events of rank 0, then one final event, through ``send``."""
    from . import distributed

    config = job["config"]
    checkpoint = Path(job["out_dir"]) / "model.pt" if job["out_dir"] else None
    try:
        nproc, device = distributed.plan(config["nproc"], config["device"],
                                         distributed.visible_gpus())
    except ValueError as exc:
        send(FailedEvent("device", str(exc)))
        return
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    home = str(Path(__file__).resolve().parent.parent)  # where ``engine`` is importable
    os.environ["PYTHONPATH"] = os.pathsep.join(
        [home] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p])
    authkey = os.urandom(16)
    listener = Listener(("127.0.0.1", 0), authkey=authkey)
    job = {**job, "config": {**config, "device": device}, "address": listener.address,
           "authkey": authkey, "launcher": os.getpid()}
    relay = _Relay(listener, send, commands)
    with tempfile.TemporaryDirectory(prefix="convas-ranks-") as folder:
        path = Path(folder) / "job.pickle"
        path.write_bytes(pickle.dumps(job))
        failure = _launch(nproc, str(path))
        relay.wait(10.0)  # rank 0 has closed its end: its last events are in
    listener.close()
    if failure is None:
        send(relay.final or FailedEvent("error", "rank 0 ended without a result", checkpoint))
    elif isinstance(relay.final, FailedEvent) and relay.final.kind != "error":
        send(relay.final)  # a problem of the design or settings, the same on every rank
    else:
        kept = checkpoint if checkpoint is not None and checkpoint.exists() else None
        send(FailedEvent("error", f"{failure}; every process of the run stopped", kept))


def _launch(nproc: int, path: str) -> str | None:
    """Start ``nproc`` ranks of :func:`_rank_main` and wait for them: None when all
    succeeded, else one line naming each failed rank (the first failure first).

    The ranks are programs (``python -m engine.train_ranks``), not multiprocessing
    children: the training child is a daemonic process, which may not have those."""

    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.launcher.api import elastic_launch

    from .distributed import failure_reason, standalone_config

    try:
        elastic_launch(standalone_config(nproc), sys.executable)(
            "-u", "-m", "engine.train_ranks", path)
    except SignalException as exc:
        return f"the launcher got {signal.Signals(exc.sigval).name}"
    except ChildFailedError as exc:  # the first failure: the others followed from it
        rank, failure = exc.get_first_failure()
        return f"rank {rank} failed: {failure_reason(failure)}"
    except RuntimeError as exc:
        return f"could not start the {nproc} processes: {exc}"
    return None


class _Relay:
    """Rank 0's connection: its events to the parent (the final one kept for last) and
    the parent's commands to it (those sent before it connected, once it does)."""

    def __init__(self, listener: Listener, send: Callable[[Event], None],
                 commands: Connection) -> None:
        self.final: DoneEvent | FailedEvent | None = None
        self._send = send
        self._listener = listener
        self._conn: Connection | None = None
        self._pending: list[tuple[str, Any]] = []
        self._lock = threading.Lock()
        self._done = threading.Event()
        threading.Thread(target=self._events, daemon=True).start()
        threading.Thread(target=self._commands, args=(commands,), daemon=True).start()

    def wait(self, timeout: float) -> None:
        if self._conn is not None:
            self._done.wait(timeout)

    def _events(self) -> None:
        try:
            conn = self._listener.accept()
        except OSError:
            return
        with self._lock:
            self._conn = conn
            for command in self._pending:
                conn.send(command)
            self._pending.clear()
        try:
            while True:
                event = conn.recv()
                if isinstance(event, DoneEvent | FailedEvent):
                    self.final = event
                else:  # keep draining rank 0 even when the parent is gone
                    with contextlib.suppress(OSError, ValueError):
                        self._send(event)
        except (EOFError, OSError):
            pass
        finally:
            self._done.set()

    def _commands(self, commands: Connection) -> None:
        while True:
            try:
                command = commands.recv()
            except (EOFError, OSError):  # the application is gone: stop, bounded
                self._forward(("stop", None))
                timer = threading.Timer(STOP_GRACE, os.kill, (os.getpid(), signal.SIGTERM))
                timer.daemon = True
                timer.start()
                return
            if command[0] in RELAYED:
                self._forward(command)

    def _forward(self, command: tuple[str, Any]) -> None:
        with self._lock:
            if self._conn is None:
                self._pending.append(command)
                return
            with contextlib.suppress(OSError, ValueError):
                self._conn.send(command)


def _rank_main(path: str) -> None:
    """One rank (started by the launcher, RANK/WORLD_SIZE/LOCAL_RANK set): join the
    group and train; on failure leave the reason where the launcher reads it (no
    traceback on the terminal: the application shows the reason) and exit 1."""
    from . import distributed

    try:
        reason = _train_rank(path)
    except Exception as exc:  # noqa: BLE001 - reported through the launcher
        reason = f"{type(exc).__name__}: {exc}"
    if reason is not None:
        distributed.record_failure(reason)
        sys.exit(1)


def _train_rank(path: str) -> str | None:
    """Train this rank's share; the reason it failed, or None."""
    import torch

    from . import distributed
    from .device import resolve_device
    from .plugins import load_plugins
    from .train_config import TrainConfig
    from .train_process import trainer_for

    job = pickle.loads(Path(path).read_bytes())
    _die_with(job["launcher"])
    if job["threads"]:
        torch.set_num_threads(job["threads"])
    if job["plugin_folders"] is not None:
        load_plugins(job["plugin_folders"])
    config = TrainConfig.from_dict(job["config"])
    world = distributed.setup(resolve_device(config.device).type)
    conn: Connection | None = None
    ok = False
    try:
        lock = threading.Lock()
        if world.main:
            conn = Client(job["address"], authkey=job["authkey"])

        def send(event: Event) -> None:
            if conn is not None:
                with lock:
                    conn.send(event)

        # rank 0 takes the relayed commands (RELAYED: no pause) as the one child does
        trainer = trainer_for(job, config, send, conn)
        result = trainer.run()
        ok = not isinstance(result, FailedEvent)
        return None if ok else result.reason
    finally:
        distributed.teardown(wait=ok)
        if conn is not None:
            conn.close()


def _die_with(launcher: int) -> None:
    """Linux: the kernel kills this rank when the launcher (the training child) dies, so
    killing the child never leaves ranks behind; elsewhere rank 0 stops when its
    connection closes and the stop flag stops the others."""
    if sys.platform.startswith("linux"):
        import ctypes

        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    if os.getppid() != launcher:  # it died before the line above
        os._exit(1)


if __name__ == "__main__":
    _rank_main(sys.argv[1])
