"""The training child as a launcher of ranks (engine.train_ranks): how many ranks on
which device, and that killing the child outright takes its ranks with it."""

from __future__ import annotations

import os
import sys
import time

import pytest

from designer.templates import template_files
from engine import Graph
from engine.distributed import plan
from engine.train_config import TrainConfig
from engine.train_events import StepEvent
from engine.train_process import TrainingProcess


def test_plan_counts_and_devices():
    assert plan(2, "cpu", 0) == (2, "cpu")
    assert plan(2, "auto", 0) == (2, "cpu")
    assert plan(2, "auto", 2) == (2, "cuda")
    assert plan(4, "auto", 2) == (4, "cpu")      # a GPU each only when there are enough
    assert plan(0, "auto", 3) == (3, "cuda")     # one per GPU
    with pytest.raises(ValueError, match="no CUDA GPU"):
        plan(0, "cpu", 0)
    with pytest.raises(ValueError, match="need one GPU each"):
        plan(3, "cuda", 2)


def test_config_takes_nproc():
    assert TrainConfig.from_dict({"nproc": 0}).nproc == 0
    with pytest.raises(ValueError, match="processes"):
        TrainConfig.from_dict({"nproc": -1})


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _children(pid: int) -> list[int]:
    found = []
    for name in os.listdir("/proc"):
        try:
            with open(f"/proc/{name}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid and fields[0] != "Z":
            found.append(int(name))
    return found


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_killing_the_child_outright_ends_its_ranks(tmp_path, monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    f = next(f for f in template_files() if f.name == "x_vs_o.convas.json")
    graph = Graph.loads(f.read_text("utf-8"), f.name)
    config = TrainConfig.from_dict({**graph.training, "device": "cpu", "nproc": 2,
                                    "epochs": 50, "limit": 256, "batch_size": 32})
    process = TrainingProcess(graph, config, out_dir=tmp_path)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # the first step: both ranks are training
            if process.poll(1) and isinstance(process.recv(), StepEvent):
                break
        else:
            pytest.fail("no step within 60 s")
        ranks = _children(process.pid)
        assert len(ranks) == 2
        process.kill(grace=0)  # SIGKILL at once: the launcher cannot clean up
        assert not process.is_alive()
        deadline = time.monotonic() + 10
        while any(map(_alive, ranks)) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not any(map(_alive, ranks))
    finally:
        process.kill()
        process.close()
