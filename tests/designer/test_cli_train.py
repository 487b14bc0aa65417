"""`convas train` and `convas export` as a user runs them."""

from __future__ import annotations

import csv
import json
import subprocess
import sys

import onnxruntime as ort
import pytest
import torch

from designer.cli import main

XO = "resources/templates/x_vs_o.convas.json"


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    import contextlib
    import io

    out = tmp_path_factory.mktemp("run")
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        code = main(["train", XO, "--dataset", "shapes", "--epochs", "2", "--limit", "400",
                     "--device", "cpu", "--out", str(out)])
    assert code == 0
    (out / "stderr.txt").write_text(err.getvalue())
    return out


def test_train_says_where_and_on_what_it_trains(trained):
    err = (trained / "stderr.txt").read_text()
    # 400 X/O training images at most; the device, precision and steps before step one
    assert "on CPU (" in err and "fp32: 400 training / " in err
    assert "1×32×32, 2 classes, 7 steps per epoch" in err
    assert err.index("steps per epoch") < err.index("epoch 1/2:")


def test_train_writes_checkpoint_and_metrics(trained, capsys):
    rows = list(csv.DictReader((trained / "metrics.csv").open()))
    assert [r["epoch"] for r in rows] == ["1", "2"]
    assert {"train_loss", "train_accuracy", "val_loss", "val_accuracy", "seconds"} <= set(rows[0])
    ckpt = torch.load(trained / "model.pt", weights_only=True)
    assert ckpt["format"] == "convas.checkpoint" and ckpt["epoch"] == 2


def test_train_refuses_a_dataset_that_does_not_fit(tmp_path, capsys):
    code = main(["train", "resources/templates/lenet5.convas.json", "--dataset", "digits",
                 "--epochs", "1", "--out", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 1
    assert "1×32×32" in err and "1×8×8" in err and "Traceback" not in err


def test_train_unknown_dataset_and_bad_numbers(tmp_path, capsys):
    assert main(["train", XO, "--dataset", "mnsit", "--out", str(tmp_path)]) == 1
    assert "mnsit" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        main(["train", XO, "--lr", "-1"])
    assert exc.value.code == 2


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_train_on_cuda_without_cuda_says_what_to_do(tmp_path):
    run = subprocess.run([sys.executable, "-m", "designer", "train", XO, "--device", "cuda",
                          "--epochs", "1", "--out", str(tmp_path)],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 1
    assert "--device cpu" in run.stderr and "Traceback" not in run.stderr


def test_export_onnx_with_trained_weights_matches_pytorch(trained, tmp_path, capsys):
    out = tmp_path / "xo.onnx"
    assert main(["export", XO, "-o", str(out), "--weights", str(trained / "model.pt")]) == 0
    assert "onnxruntime agrees" in capsys.readouterr().out
    from engine import Graph, compile_graph

    model = compile_graph(Graph.load(XO)).eval()
    model.load_state_dict(torch.load(trained / "model.pt", weights_only=True)["state_dict"])
    x = torch.randn(5, 1, 32, 32)
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    (got,) = session.run(None, {name: x.numpy()})
    torch.testing.assert_close(torch.from_numpy(got), model(x).detach(), rtol=1e-4, atol=1e-5)


def test_export_pytorch_file_loads_the_checkpoint(trained, tmp_path, capsys):
    out = tmp_path / "xo_model.py"
    assert main(["export", XO, "-o", str(out), "--format", "pytorch"]) == 0
    namespace: dict = {}
    exec(compile(out.read_text(), str(out), "exec"), namespace)
    model = namespace["build_model"]().eval()
    model.load_state_dict(torch.load(trained / "model.pt", weights_only=True)["state_dict"])
    assert model(torch.randn(2, 1, 32, 32)).shape == (2, 2)


def test_export_refuses_foreign_weights_and_bad_targets(tmp_path, capsys):
    foreign = tmp_path / "foreign.pt"
    torch.save({"weights": 1}, foreign)
    assert main(["export", XO, "-o", str(tmp_path / "x.onnx"), "--weights", str(foreign)]) == 1
    assert "not a Convas checkpoint" in capsys.readouterr().err
    missing_dir = tmp_path / "no" / "such" / "dir" / "x.onnx"
    assert main(["export", XO, "-o", str(missing_dir)]) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err and str(missing_dir.parent) in err
    other = tmp_path / "other.pt"
    from engine import Graph
    from engine.checkpoint import save_checkpoint
    save_checkpoint(other, Graph.load(XO), {"w": torch.ones(1)})
    assert main(["export", XO, "-o", str(tmp_path / "y.onnx"), "--weights", str(other)]) == 1
    assert "Traceback" not in capsys.readouterr().err


def test_summary_of_the_trained_design_still_works(capsys):
    assert main(["summary", XO, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["total_params"] == 7026
