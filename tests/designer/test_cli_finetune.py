"""Fine-tuning on the command line (SPEC §8): `convas train --init` and the trainable
parameter count of `convas summary`."""

from __future__ import annotations

import json

import pytest
import torch

from designer.cli import main
from engine import Graph, compile_graph
from engine.checkpoint import save_checkpoint


def digits_net(head: str = "fc") -> Graph:
    """A tiny classifier of scikit-learn's 8×8 digits, its body frozen."""
    g = Graph("digits-net")
    chain = [("input", "Input", {"channels": 1, "height": 8, "width": 8}),
             ("c1", "Conv2d", {"out_channels": 4, "bias": False}), ("bn1", "BatchNorm", {}),
             ("r1", "Activation", {}), ("gap", "GlobalAvgPool", {}),
             (head, "Linear", {"out_features": 10}), ("out", "Output", {})]
    for nid, kind, params in chain:
        g.add_node(nid, kind, params)
    for (a, *_), (b, *_) in zip(chain, chain[1:], strict=False):
        g.add_edge(a, b)
    return g


@pytest.fixture
def files(tmp_path):
    """An old design's checkpoint, and a new design whose head has a new id, body frozen."""
    old = digits_net()
    torch.manual_seed(3)
    save_checkpoint(tmp_path / "old.pt", old, compile_graph(old).state_dict())
    new = digits_net(head="head")
    for n in ("c1", "bn1"):
        new.set_frozen(n, True)
    new.save(tmp_path / "new.convas.json")
    return tmp_path


def test_summary_counts_trainable_params_without_frozen_blocks(files, capsys):
    path = str(files / "new.convas.json")
    assert main(["summary", path]) == 0
    out = capsys.readouterr().out
    # c1: 4·9 weights, bn1: 8, head: 4·10 + 10; the frozen two leave the trainable count
    assert "Total params:     94 " in out
    assert "Trainable params: 50 (44 frozen)" in out
    rows = {line.split()[0]: line for line in out.splitlines() if line.split()}
    assert "Conv2d (frozen)" in rows["c1"] and "(frozen)" not in rows["head"]
    assert main(["summary", path, "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert (data["total_params"], data["trainable_params"]) == (94, 50)
    # weights of frozen blocks take memory, their gradients and optimizer state do not
    assert data["memory"]["gradients"] == 4 * 50


def test_train_init_says_what_it_loaded_before_step_one(files, capsys):
    out = files / "run"
    code = main(["train", str(files / "new.convas.json"), "--dataset", "digits",
                 "--epochs", "1", "--limit", "64", "--device", "cpu",
                 "--init", str(files / "old.pt"), "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 0, err
    line = f"weights from {files / 'old.pt'}: loaded 2 nodes (c1, bn1); fresh 1 node (head)"
    assert line in err
    assert err.index(line) < err.index("epoch 1/1:")
    start = torch.load(files / "old.pt", weights_only=True)["state_dict"]
    saved = torch.load(out / "model.pt", weights_only=True)
    assert torch.equal(saved["state_dict"]["c1.weight"], start["c1.weight"])  # frozen
    assert saved["config"]["init"] == str(files / "old.pt")


def test_train_init_and_resume_together_are_refused(files, capsys):
    code = main(["train", str(files / "new.convas.json"), "--init", str(files / "old.pt"),
                 "--resume", str(files / "old.pt"), "--out", str(files / "run")])
    err = capsys.readouterr().err
    assert code == 2
    assert "--init and --resume cannot go together" in err and "Traceback" not in err
    assert not (files / "run").exists()


@pytest.mark.parametrize("content", [None, b"junk", b"\x00garbage, not a checkpoint"])
def test_train_init_with_an_unreadable_checkpoint_fails_clearly(files, capsys, content):
    ckpt = files / "broken.pt"
    if content is not None:
        ckpt.write_bytes(content)
    code = main(["train", str(files / "new.convas.json"), "--dataset", "digits",
                 "--device", "cpu", "--init", str(ckpt), "--out", str(files / "run")])
    err = capsys.readouterr().err
    assert code == 1
    assert str(ckpt) in err and "Traceback" not in err
    assert ("no such checkpoint file" if content is None else "not a readable checkpoint") in err
    assert "epoch 1/" not in err
