"""`convas train --nproc` and torchrun (SPEC §10) as a user runs them: real processes,
gloo on the CPU, every wait bounded so a hung collective fails the test."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from designer.cli import main

ROOT = Path(__file__).resolve().parents[2]
LIMIT = 60  # seconds any one run may take before the test calls it hung

# A test plug-in (SPEC §9) that makes one rank fail or dawdle at a given training step:
# fault injection stays out of the product code. Meta tensors (the analysis) and eval
# forwards (validation, probes) do not count.
FAULT = '''\
import os
import time

from torch import nn

from engine.plugins import Param, block


class _Fault(nn.Module):
    def __init__(self, rank, after, how):
        super().__init__()
        self.rank, self.after, self.how, self.calls = rank, after, how, 0

    def forward(self, x):
        if x.is_meta or not self.training:
            return x
        self.calls += 1
        if self.how == "slow":
            time.sleep(0.05)
        elif int(os.environ.get("RANK", "0")) == self.rank and self.calls == self.after:
            if self.how == "exit":
                os._exit(3)
            raise RuntimeError(f"injected fault at step {self.calls}")
        return x


@block(category="Testing", doc="Fails rank `rank` at its `after`-th training step.",
       params=[Param("rank", int, 1, min=0), Param("after", int, 1, min=1),
               Param("how", str, "exit", choices=["exit", "raise", "slow"])])
def Fault(in_shape, rank, after, how):
    return _Fault(rank, after, how)
'''


def design(path: Path, batch_size: int = 67, epochs: int = 1, fault: dict | None = None) -> Path:
    """A BatchNorm-free, Dropout-free classifier of `digits` trained with SGD; 67 is odd
    and leaves a last batch of 31, so every share is uneven."""
    nodes = [{"id": "input", "type": "Input", "params": {"channels": 1, "height": 8, "width": 8}},
             {"id": "conv", "type": "Conv2d", "params": {"out_channels": 8, "kernel_size": 3}},
             {"id": "relu", "type": "Activation", "params": {"function": "relu"}},
             {"id": "flatten", "type": "Flatten", "params": {}},
             {"id": "fc", "type": "Linear", "params": {"out_features": 10}},
             {"id": "out", "type": "Output", "params": {}}]
    chain = [n["id"] for n in nodes]
    if fault is not None:
        nodes.insert(3, {"id": "fault", "type": "Fault", "params": fault})
        chain.insert(3, "fault")
    graph = {"format": "convas.graph", "version": 1, "name": "small", "nodes": nodes,
             "edges": [{"from": a, "to": b} for a, b in zip(chain, chain[1:], strict=False)],
             "training": {"dataset": "digits", "epochs": epochs, "batch_size": batch_size,
                          "optimizer": "sgd", "lr": 0.05, "momentum": 0.9, "seed": 3,
                          "device": "cpu"}}
    path.write_text(json.dumps(graph))
    return path


def env(tmp: Path) -> dict[str, str]:
    plugins = tmp / "plugins"
    plugins.mkdir(exist_ok=True)
    (plugins / "fault.py").write_text(FAULT)
    return {**os.environ, "OMP_NUM_THREADS": "1", "CONVAS_BLOCKS_PATH": str(plugins),
            "XDG_CONFIG_HOME": str(tmp / "config"), "PYTHONUNBUFFERED": "1"}


def run(args: list[str], tmp: Path, *, launcher: list[str] | None = None
        ) -> subprocess.CompletedProcess:
    command = [sys.executable, *(launcher or []), "-m", "designer", "train", *args]
    return subprocess.run(command, cwd=ROOT, env=env(tmp), capture_output=True, text=True,
                          timeout=LIMIT)


def weights(path: Path) -> dict[str, torch.Tensor]:
    return torch.load(path, weights_only=True)["state_dict"]


def rows(path: Path) -> list[dict[str, str]]:
    return [{k: v for k, v in row.items() if k != "seconds"}
            for row in csv.DictReader(path.open())]


@pytest.fixture(scope="module")
def two(tmp_path_factory):
    """One epoch on two processes through --nproc 2."""
    tmp = tmp_path_factory.mktemp("nproc")
    result = run([str(design(tmp / "small.convas.json")), "--nproc", "2", "--out",
                  str(tmp / "out")], tmp)
    assert result.returncode == 0, result.stderr
    return tmp / "out", result.stderr


def test_two_processes_end_with_the_weights_of_one(two, tmp_path, capsys):
    out, err = two
    assert "on 2 processes" in err and err.count("done after 1 epoch") == 1  # rank 0 alone
    code = main(["train", str(design(tmp_path / "small.convas.json")), "--out",
                 str(tmp_path / "one")])
    assert code == 0, capsys.readouterr().err
    one, both = weights(tmp_path / "one" / "model.pt"), weights(out / "model.pt")
    assert list(both) == list(one)  # no "module." prefixes
    for key in one:
        assert torch.linalg.norm(both[key] - one[key]) <= 1e-4 * torch.linalg.norm(one[key]), key
    # the metrics are those of the whole batches and the whole validation set
    for mine, theirs in zip(rows(out / "metrics.csv"), rows(tmp_path / "one" / "metrics.csv"),
                            strict=True):
        for column, value in theirs.items():
            assert float(mine[column]) == pytest.approx(float(value), rel=1e-5), column


def test_torchrun_gives_the_same_files_as_nproc(two, tmp_path):
    out, _ = two
    result = run([str(design(tmp_path / "small.convas.json")), "--out", str(tmp_path / "tr")],
                 tmp_path, launcher=["-m", "torch.distributed.run", "--standalone",
                                     "--nproc_per_node", "2"])
    assert result.returncode == 0, result.stderr
    assert rows(tmp_path / "tr" / "metrics.csv") == rows(out / "metrics.csv")
    theirs = weights(tmp_path / "tr" / "model.pt")
    for key, value in weights(out / "model.pt").items():
        assert torch.equal(theirs[key], value), key


@pytest.mark.parametrize("how, reason", [("exit", "exited with status 3"),
                                         ("raise", "injected fault at step 30")])
def test_a_failing_worker_ends_the_run_naming_its_rank(tmp_path, how, reason):
    # 22 steps an epoch: rank 1 fails in epoch 2, after epoch 1's checkpoint
    graph = design(tmp_path / "f.convas.json", epochs=4,
                   fault={"rank": 1, "after": 30, "how": how})
    started = time.monotonic()
    result = run([str(graph), "--nproc", "2", "--out", str(tmp_path / "out")], tmp_path)
    assert time.monotonic() - started < 30
    assert result.returncode == 1
    named = [line for line in result.stderr.splitlines() if line.startswith("convas: rank ")]
    # the rank that failed first comes first (rank 0 may follow: it lost its peer)
    assert named[0].startswith("convas: rank 1 failed: ") and reason in named[0], result.stderr
    assert "Traceback" not in result.stderr
    checkpoint = torch.load(tmp_path / "out" / "model.pt", weights_only=True)
    assert checkpoint["epoch"] == 1 and "conv.weight" in checkpoint["state_dict"]
    assert f"the last checkpoint is {tmp_path / 'out' / 'model.pt'}" in result.stderr


def test_ctrl_c_to_the_launcher_stops_every_process_and_saves(tmp_path):
    graph = design(tmp_path / "s.convas.json", epochs=50,
                   fault={"rank": 0, "after": 1, "how": "slow"})  # ~1 s an epoch
    out = tmp_path / "out"
    command = [sys.executable, "-m", "designer", "train", str(graph), "--nproc", "2",
               "--out", str(out)]
    proc = subprocess.Popen(command, cwd=ROOT, env=env(tmp_path), stderr=subprocess.PIPE,
                            stdout=subprocess.DEVNULL, text=True)
    try:
        deadline = time.monotonic() + LIMIT
        while not (out / "metrics.csv").exists():  # one epoch done
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.1)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    assert proc.returncode == 130, err
    assert "SIGINT received: every process of the run stopped" in err
    assert "stopped after" in err and "Traceback" not in err
    checkpoint = torch.load(out / "model.pt", weights_only=True)
    assert 1 <= checkpoint["epoch"] < 50 and "fc.weight" in checkpoint["state_dict"]


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_nproc_gpu_without_cuda_says_so(tmp_path, capsys):
    code = main(["train", str(design(tmp_path / "g.convas.json")), "--nproc", "gpu",
                 "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 1
    assert "no CUDA GPU" in err and "--nproc N" in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()


def test_nproc_must_be_a_count_or_gpu(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["train", str(design(tmp_path / "g.convas.json")), "--nproc", "two"])
    assert exit_.value.code == 2 and "'two' is not a number of processes" in \
        capsys.readouterr().err


def test_the_slurm_example_is_valid_bash_running_torchrun_on_two_nodes():
    script = ROOT / "resources" / "examples" / "slurm.sbatch"
    check = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True,
                           timeout=10)
    assert check.returncode == 0, check.stderr
    text = script.read_text()
    assert "#SBATCH --nodes=2" in text and "--rdzv-backend c10d" in text
    assert "-m designer train" in text
