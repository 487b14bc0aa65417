"""The trainer: it learns, reports, stops, pauses, resumes, and fails clearly."""

from __future__ import annotations

import math
import threading
from importlib import resources

import numpy as np
import pytest
import torch

from engine import Graph
from engine.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from engine.data import load_dataset
from engine.train import Trainer
from engine.train_config import ConfigError, TrainConfig
from engine.train_events import DoneEvent, EpochEvent, FailedEvent, FeatureMapEvent, StepEvent

torch.set_num_threads(1)


def template(name: str) -> Graph:
    text = (resources.files("resources") / "templates" / f"{name}.convas.json").read_text()
    return Graph.loads(text, name)


@pytest.fixture(scope="module")
def xo_data():
    return load_dataset("shapes", classes=["X", "O"], options={"count": 400}, seed=1)


def run(graph, data, events=None, **settings):
    events = [] if events is None else events
    cfg = TrainConfig.from_dict({"epochs": 1, "batch_size": 32, "lr": 3e-3, "device": "cpu",
                                 **settings})
    out_dir = settings.pop("out_dir", None)
    trainer = Trainer(graph, cfg, callback=events.append, dataset=data, out_dir=out_dir,
                      report_interval=0)
    return trainer, trainer.run(), events


def test_training_learns_and_reports_every_kind_of_event(xo_data, tmp_path):
    trainer, result, events = run(template("x_vs_o"), xo_data, epochs=3, out_dir=tmp_path,
                                  probe_every=5)
    assert isinstance(result, DoneEvent) and not result.stopped
    steps = [e for e in events if isinstance(e, StepEvent)]
    epochs = [e for e in events if isinstance(e, EpochEvent)]
    assert len(steps) == 3 * math.ceil(len(xo_data.train) / 32)  # report_interval=0: each step
    assert [e.epoch for e in epochs] == [1, 2, 3]
    assert epochs[-1].train_loss < epochs[0].train_loss
    assert epochs[-1].val_accuracy > 0.8
    assert epochs[-1].confusion.shape == (2, 2)
    assert epochs[-1].confusion.sum() == len(xo_data.val)
    assert all(s.images_per_s > 0 and s.lr == pytest.approx(3e-3) for s in steps)
    assert events[-1] is result
    # files: checkpoint loadable with weights_only, CSV with the SPEC columns
    ckpt = torch.load(tmp_path / "model.pt", weights_only=True)
    assert ckpt["format"] == "convas.checkpoint" and ckpt["version"] == 1
    assert ckpt["epoch"] == 3 and ckpt["classes"] == ["X", "O"]
    assert Graph.from_dict(ckpt["graph"]).to_dict() == template("x_vs_o").to_dict()
    for k, v in trainer.model.state_dict().items():
        torch.testing.assert_close(ckpt["state_dict"][k], v)
    header, *rows = (tmp_path / "metrics.csv").read_text().splitlines()
    assert header.startswith("epoch,train_loss,train_accuracy,val_loss,val_accuracy,seconds")
    assert len(rows) == 3


def test_feature_maps_of_requested_blocks_and_switching_live(xo_data):
    events = []
    graph = template("x_vs_o")
    cfg = TrainConfig(epochs=1, batch_size=32, device="cpu", probe_every=2)
    trainer = Trainer(graph, cfg, dataset=xo_data, probe_nodes=["conv1"], report_interval=0,
                      callback=lambda e: (events.append(e), isinstance(e, StepEvent)
                                          and e.global_step == 4
                                          and trainer.set_probe_nodes(["relu2", "fc"])))
    trainer.run()
    maps = [e for e in events if isinstance(e, FeatureMapEvent)]
    conv1 = [e for e in maps if e.node == "conv1"]
    assert conv1 and conv1[0].maps.shape == (8, 32, 32)
    assert {e.node for e in maps if e.global_step > 4} == {"relu2", "fc"}
    relu2 = next(e for e in maps if e.node == "relu2")
    assert relu2.maps.shape == (16, 16, 16) and relu2.maps.min() >= 0
    assert next(e for e in maps if e.node == "fc").maps.shape == (2,)


def test_each_step_is_probed_at_most_once_even_at_the_end_of_an_epoch(xo_data):
    events = []
    cfg = TrainConfig(epochs=2, batch_size=32, device="cpu", probe_every=1)
    Trainer(template("x_vs_o"), cfg, dataset=xo_data, probe_nodes=["conv1"],
            callback=events.append).run()
    steps = [e.global_step for e in events if isinstance(e, FeatureMapEvent)]
    last_step = max(e.global_step for e in events if isinstance(e, StepEvent))
    assert steps == list(range(1, last_step + 1))


@pytest.mark.parametrize("name, words", [("lenet5", "training diverged"),
                                          ("x_vs_o", "exploded to")])
def test_diverging_loss_stops_with_a_message_and_an_intact_checkpoint(xo_data, tmp_path, name,
                                                                      words):
    graph = template(name)
    graph.set_param("input", "height", 32)
    last = graph.inputs_of("out")[0][1]
    graph.set_param(last, "out_features", 2)
    _, result, events = run(graph, xo_data, optimizer="sgd", lr=1e6, epochs=3,
                            out_dir=tmp_path)
    assert isinstance(result, FailedEvent) and result.kind == "nan"
    assert words in result.reason and "Lower the learning rate" in result.reason
    assert result.suggestion["lr"] == pytest.approx(1e5)
    data = load_checkpoint(tmp_path / "model.pt")
    assert all(torch.isfinite(v).all() for v in data["state_dict"].values()
               if v.is_floating_point())


def test_stop_in_mid_epoch_keeps_a_consistent_checkpoint(xo_data, tmp_path):
    holder = {}

    def callback(event):
        if isinstance(event, StepEvent) and event.step == 3:
            holder["trainer"].stop()

    cfg = TrainConfig(epochs=2, batch_size=16, device="cpu")
    trainer = Trainer(template("x_vs_o"), cfg, dataset=xo_data, callback=callback,
                      out_dir=tmp_path, report_interval=0)
    holder["trainer"] = trainer
    result = trainer.run()
    assert isinstance(result, DoneEvent) and result.stopped and result.epochs_completed == 0
    saved = load_checkpoint(tmp_path / "model.pt")["state_dict"]
    for k, v in trainer.model.state_dict().items():
        torch.testing.assert_close(saved[k], v)


def test_pause_and_resume_from_another_thread(xo_data):
    paused = threading.Event()
    events = []

    def callback(event):
        events.append(event)
        if isinstance(event, StepEvent) and event.global_step == 2:
            trainer.pause()
            paused.set()

    trainer = Trainer(template("x_vs_o"), TrainConfig(epochs=1, batch_size=32, device="cpu"),
                      dataset=xo_data, callback=callback, report_interval=0)
    worker = threading.Thread(target=trainer.run)
    worker.start()
    assert paused.wait(30)
    n = len(events)
    worker.join(0.5)
    assert worker.is_alive() and len(events) == n  # really waiting
    trainer.resume()
    worker.join(60)
    assert isinstance(events[-1], DoneEvent) and not events[-1].stopped


def test_resume_continues_from_the_checkpoint(xo_data, tmp_path):
    run(template("x_vs_o"), xo_data, epochs=1, out_dir=tmp_path)
    events = []
    cfg = TrainConfig(epochs=2, batch_size=32, device="cpu")
    result = Trainer(template("x_vs_o"), cfg, dataset=xo_data, callback=events.append,
                     out_dir=tmp_path / "more", resume=tmp_path / "model.pt").run()
    assert isinstance(result, DoneEvent)
    assert [e.epoch for e in events if isinstance(e, EpochEvent)] == [2]
    assert [row["epoch"] for row in result.metrics] == [1, 2]


@pytest.mark.parametrize("schedule, check", [
    ("step", lambda lrs: lrs[-1] == pytest.approx(lrs[0] * 0.1)),
    ("cosine", lambda lrs: lrs[-1] < lrs[0] / 2),
    ("onecycle", lambda lrs: max(lrs) > lrs[0] * 5),
])
def test_schedules_change_the_learning_rate(xo_data, schedule, check):
    _, result, events = run(template("x_vs_o"), xo_data, epochs=3, schedule=schedule,
                            step_size=2, optimizer="sgd", lr=0.01)
    assert isinstance(result, DoneEvent)
    lrs = [e.lr for e in events if isinstance(e, StepEvent)]
    assert check(lrs), lrs


def test_cuda_requested_without_cuda_is_refused_clearly(xo_data):
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    _, result, events = run(template("x_vs_o"), xo_data, device="cuda")
    assert isinstance(result, FailedEvent) and result.kind == "device"
    assert "--device cpu" in result.reason
    assert not any(isinstance(e, StepEvent) for e in events)


def test_input_that_does_not_fit_the_dataset_is_refused_before_training(xo_data):
    _, result, events = run(template("lenet5"), load_dataset("digits"))
    assert isinstance(result, FailedEvent) and result.kind == "data"
    assert "1×32×32" in result.reason and "1×8×8" in result.reason
    assert "'input'" in result.reason
    assert not any(isinstance(e, StepEvent) for e in events)


def test_class_count_that_does_not_fit_is_refused(xo_data):
    graph = template("x_vs_o")
    graph.set_param("fc", "out_features", 5)
    _, result, _ = run(graph, xo_data)
    assert isinstance(result, FailedEvent) and result.kind == "data"
    assert "2 classes" in result.reason and "fc's out_features to 2" in result.reason


def test_truncated_and_foreign_checkpoints_are_refused(xo_data, tmp_path):
    good = save_checkpoint(tmp_path / "good.pt", template("x_vs_o"), {"w": torch.ones(3)})
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(good.read_bytes()[:200])
    foreign = tmp_path / "foreign.pt"
    torch.save({"state_dict": {"w": torch.ones(3)}}, foreign)
    with pytest.raises(CheckpointError, match="not a readable checkpoint"):
        load_checkpoint(truncated)
    with pytest.raises(CheckpointError, match="not a Convas checkpoint"):
        load_checkpoint(foreign)
    cfg = TrainConfig(epochs=1, device="cpu")
    for bad in (truncated, foreign, good):  # good file, but weights of another design
        result = Trainer(template("x_vs_o"), cfg, dataset=xo_data, resume=bad).run()
        assert isinstance(result, FailedEvent) and result.kind == "io", result.reason


def test_bad_settings_are_refused_with_the_setting_named():
    with pytest.raises(ConfigError, match="optimizer 'rmsprop'"):
        TrainConfig.from_dict({"optimizer": "rmsprop"})
    with pytest.raises(ConfigError, match="learning rate"):
        TrainConfig.from_dict({"lr": -1})
    assert TrainConfig.from_dict({"unknown_key": 1, "epochs": 3}).epochs == 3


def test_digits_small_cnn_learns(tmp_path):
    """A tiny CNN on scikit-learn's digits (the ≥97 % figure comes from `convas train`)."""
    g = Graph("digits cnn")
    g.add_node("x", "Input", {"channels": 1, "height": 8, "width": 8})
    g.add_node("c1", "Conv2d", {"out_channels": 16})
    g.add_node("r1", "Activation", {})
    g.add_node("p1", "MaxPool2d", {})
    g.add_node("flat", "Flatten", {})
    g.add_node("fc", "Linear", {"out_features": 10})
    g.add_node("out", "Output", {})
    for a, b in zip(["x", "c1", "r1", "p1", "flat", "fc"], ["c1", "r1", "p1", "flat", "fc",
                                                               "out"], strict=True):
        g.add_edge(a, b)
    _, result, events = run(g, load_dataset("digits"), epochs=3, lr=3e-3)
    last = [e for e in events if isinstance(e, EpochEvent)][-1]
    assert isinstance(result, DoneEvent) and last.val_accuracy > 0.85
    assert np.isclose(last.per_class_accuracy.mean(), last.val_accuracy, atol=0.05)


@pytest.mark.parametrize("settings", [
    {"precision": "bf16", "channels_last": True},  # the AMP / channels-last path, on CPU
    {"optimizer": "sgd", "nesterov": True, "lr": 0.05, "weight_decay": 1e-4,
     "label_smoothing": 0.1, "crop_padding": 2, "hflip": True},
    {"optimizer": "adamw", "weight_decay": 0.01, "channels_last": False},  # NCHW path
])
def test_training_options_run_and_learn(xo_data, settings):
    _, result, events = run(template("x_vs_o"), xo_data, epochs=2, **settings)
    assert isinstance(result, DoneEvent), getattr(result, "reason", "")
    last = [e for e in events if isinstance(e, EpochEvent)][-1]
    assert last.val_accuracy > 0.75 and np.isfinite(last.train_loss)


def test_fp16_without_cuda_is_refused(xo_data):
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    _, result, _ = run(template("x_vs_o"), xo_data, precision="fp16")
    assert isinstance(result, FailedEvent) and result.kind == "config"
    assert "fp16" in result.reason and "bf16" in result.reason


def test_out_of_memory_is_answered_with_a_smaller_batch(xo_data, monkeypatch, tmp_path):
    """A CUDA OOM (simulated: this machine may have no GPU) ends the run with a batch size
    to try instead of a traceback, and the weights on disk stay those of the last epoch."""
    calls = {"n": 0}
    real_step = Trainer._step

    def step(self, x, y):
        calls["n"] += 1
        if calls["n"] > 15:  # after the first epoch (13 steps at batch 32)
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2 GiB")
        return real_step(self, x, y)

    monkeypatch.setattr(Trainer, "_step", step)
    _, result, events = run(template("x_vs_o"), xo_data, epochs=3, out_dir=tmp_path)
    assert isinstance(result, FailedEvent) and result.kind == "oom"
    assert "ran out of memory at batch size 32" in result.reason
    assert 1 <= result.suggestion["batch_size"] < 32
    assert f"--batch-size {result.suggestion['batch_size']}" in result.reason
    assert load_checkpoint(tmp_path / "model.pt")["epoch"] == 1
