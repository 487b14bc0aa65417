"""Training on several processes (SPEC §10): the process group, rank helpers and the
launcher, all through torch's own machinery (``torch.distributed`` and the elastic
launcher behind ``torchrun``) rather than a home-made one.

A process started by torchrun (the environment holds ``RANK``, ``WORLD_SIZE``,
``LOCAL_RANK``, ``MASTER_ADDR``/``MASTER_PORT``) joins the job with :func:`setup`; the
trainer asks :func:`current` who it is, so the same code trains on one process or many.
Every collective of a run is bounded by the process group's timeout, so a rank whose
peer died fails within seconds (gloo sees the closed connection) or at worst after
``timeout`` instead of hanging. :func:`launch` starts N local processes of ``python -m
designer train …`` through ``torch.distributed.launcher.elastic_launch`` with the
rendezvous of ``torchrun --standalone`` (a free port), and turns torchrun's failure
report into one line per failed rank.
"""

from __future__ import annotations

import contextlib
import datetime
import logging
import os
import signal
import sys
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import torch
import torch.distributed as dist

if TYPE_CHECKING:
    from torch.distributed.launcher.api import LaunchConfig

COLLECTIVE_TIMEOUT = 30.0  # seconds any collective may wait for a peer
__all__ = ["COLLECTIVE_TIMEOUT", "World", "all_sum", "current", "failure_reason", "launch",
           "launched", "plan", "record_failure", "setup", "standalone_config", "teardown",
           "visible_gpus"]


@dataclass(frozen=True)
class World:
    """Who this process is in the run: ``rank`` of ``size``, ``local_rank`` on its node."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        """Rank 0: the one process that reports, prints and writes files."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.size > 1


def launched() -> bool:
    """Whether torchrun (or a launcher like it) started this process as part of a job."""
    return all(k in os.environ for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK"))


def current() -> World:
    """This process's place in the run; a lone process (no process group) is rank 0 of 1."""
    if not (dist.is_available() and dist.is_initialized()):
        return World()
    return World(dist.get_rank(), dist.get_world_size(),
                 int(os.environ.get("LOCAL_RANK", dist.get_rank())))


def setup(device_kind: str = "cpu", timeout: float = COLLECTIVE_TIMEOUT,
          init_method: str | None = None) -> World:
    """Join the job described by the environment: gloo on the CPU, NCCL on CUDA with
    GPU ``LOCAL_RANK`` as this process's device. ``timeout`` bounds every collective,
    so no rank waits forever for one that died. ``init_method`` (e.g. ``file://PATH``)
    meets the others there instead of at ``MASTER_ADDR:MASTER_PORT``."""
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    backend = "gloo"
    if device_kind == "cuda":
        torch.cuda.set_device(local_rank)
        backend = "nccl"
    if not dist.is_initialized():
        where = {} if init_method is None else dict(
            init_method=init_method, rank=int(os.environ["RANK"]),
            world_size=int(os.environ["WORLD_SIZE"]))
        dist.init_process_group(backend, timeout=datetime.timedelta(seconds=timeout), **where)
    return current()


def teardown(wait: bool = False) -> None:
    """Leave the process group (a no-op when there is none). ``wait``: after a run that
    ended alike on every rank, first wait for the others (bounded by the timeout), so
    no rank takes the group down while another still uses it."""
    if dist.is_available() and dist.is_initialized():
        if wait and dist.get_world_size() > 1:
            with contextlib.suppress(RuntimeError):
                dist.barrier()
        dist.destroy_process_group()


def all_sum(tensor: torch.Tensor) -> torch.Tensor:
    """Sum ``tensor`` over every process, in place (nothing to do on one process)."""
    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor


def standalone_config(nproc: int) -> LaunchConfig:
    """torchrun --standalone as a LaunchConfig: one machine, a rendezvous on a free
    port, no restarts, ranks watched every 0.1 s; torchrun's own log lines ("shutting
    down workers", "failed (exitcode: 1)") silenced, since the caller says it better."""
    from torch.distributed.launcher.api import LaunchConfig

    logging.getLogger("torch.distributed.elastic").setLevel(logging.CRITICAL)
    return LaunchConfig(min_nodes=1, max_nodes=1, nproc_per_node=nproc,
                        run_id=f"convas-{uuid.uuid4().hex[:8]}", rdzv_backend="c10d",
                        rdzv_endpoint="localhost:0", max_restarts=0, monitor_interval=0.1,
                        start_method="spawn")


def plan(nproc: int, device: str, gpus: int) -> tuple[int, str]:
    """How many ranks on which device, for ``convas train --nproc`` and the Training
    dock alike: ``nproc`` 0 is one per GPU; ``auto`` takes a GPU each only when there
    are enough. ValueError says what to choose instead, in both places' words."""
    if nproc == 0:
        if not gpus:
            raise ValueError("one process per GPU was asked for, but torch sees no CUDA GPU "
                             "here: train on CPU processes instead (--nproc N, or "
                             "'N processes (CPU)' in the Device menu)")
        return gpus, "cuda"
    if device == "cuda" and nproc > gpus:
        raise ValueError(f"{nproc} processes on CUDA need one GPU each, but torch sees "
                         f"{gpus}: use one process per GPU (--nproc gpu, 'all GPUs') or "
                         f"CPU processes")
    if device in ("auto", "mps"):
        device = "cuda" if device == "auto" and 0 < nproc <= gpus else "cpu"
    return nproc, device


def visible_gpus() -> int:
    """How many CUDA GPUs this process sees (``--nproc gpu`` starts one process each)."""
    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def record_failure(message: str) -> None:
    """Leave ``message`` where torchrun looks for a worker's reason for failing (its
    error file), so the launcher names the reason along with the rank."""
    if not os.environ.get("TORCHELASTIC_ERROR_FILE"):
        return
    from torch.distributed.elastic.multiprocessing.errors import get_error_handler

    try:
        raise RuntimeError(message)
    except RuntimeError as exc:
        get_error_handler().record_exception(exc)


def launch(args: Sequence[str], nproc: int, *, err=None,
           checkpoint: Path | None = None) -> int:
    """Run ``python -m designer`` with ``args`` on ``nproc`` processes of this machine
    through torch's elastic launcher (as ``torchrun --standalone`` does: a rendezvous
    on a free local port, so a port in use is never a problem) and return the exit
    status: rank 0's on success, 130 after Ctrl+C, 1 when a process failed (each
    failed rank is named with its reason on ``err``).

    Each worker gets ``OMP_NUM_THREADS=1`` unless it is set: N processes of several
    threads each would fight over the cores.
    """
    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.launcher.api import elastic_launch

    err = err or sys.stderr
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    try:
        elastic_launch(standalone_config(nproc), sys.executable)("-u", "-m", "designer", *args)
    except SignalException as exc:
        name = signal.Signals(exc.sigval).name
        err.write(f"convas: {name} received: every process of the run stopped"
                  f"{_saved(checkpoint)}\n")
        return 130
    except ChildFailedError as exc:
        first = exc.get_first_failure()[0]
        ranks = sorted(exc.failures, key=lambda r: (r != first, r))
        for rank in ranks:
            err.write(f"convas: rank {rank} failed: {failure_reason(exc.failures[rank])}\n")
        err.write(f"convas: the run ended on every process{_saved(checkpoint)}\n")
        return 1
    except RuntimeError as exc:  # the launcher itself: rendezvous, ports, start-up
        err.write(f"convas: could not start the {nproc} processes: {exc}\n")
        return 1
    return 0


def _saved(checkpoint: Path | None) -> str:
    if checkpoint is not None and checkpoint.exists():
        return f"; the last checkpoint is {checkpoint}"
    return ""


def failure_reason(failure) -> str:
    """One line out of torchrun's ProcessFailure: the recorded message, or the signal
    that killed the process, or its exit status."""
    code = failure.exitcode
    data = failure.error_file_data
    if isinstance(data, dict) and isinstance(data.get("message"), dict):
        text = str(data["message"].get("message", "")).strip()
        if text:
            return text.removeprefix("RuntimeError: ")
    if code is not None and code < 0:
        return f"killed by {failure.signal_name()} (pid {failure.pid})"
    return f"exited with status {code} (pid {failure.pid})"
