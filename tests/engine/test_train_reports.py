"""What a run reports beyond losses: the ready event, the most confident mistakes,
kernels, probe switching, and the training child process's protocol."""

from __future__ import annotations

import os
import signal
import time
from importlib import resources

import numpy as np
import pytest
import torch

from engine import Graph, compile_graph
from engine.data import load_dataset
from engine.probe import activations, kernels
from engine.train import MISTAKES_SHOWN, Trainer
from engine.train_config import TrainConfig
from engine.train_events import (
    DoneEvent,
    EpochEvent,
    FailedEvent,
    FeatureMapEvent,
    ReadyEvent,
    StepEvent,
)
from engine.train_process import TrainingProcess

torch.set_num_threads(1)


def xo() -> Graph:
    text = (resources.files("resources") / "templates" / "x_vs_o.convas.json").read_text()
    return Graph.loads(text, "x_vs_o")


@pytest.fixture(scope="module")
def xo_data():
    return load_dataset("shapes", classes=["X", "O"], options={"count": 400}, seed=2)


def train(data, **settings):
    events = []
    cfg = TrainConfig(**{"epochs": 1, "batch_size": 32, "device": "cpu", **settings})
    trainer = Trainer(xo(), cfg, dataset=data, callback=events.append, report_interval=0,
                      probe_nodes=["conv1"])
    trainer.run()
    return trainer, events


def test_ready_event_comes_first_with_what_views_need(xo_data):
    trainer, events = train(xo_data)
    ready = events[0]
    assert isinstance(ready, ReadyEvent)
    assert ready.classes == ["X", "O"] and ready.image_shape == (1, 32, 32)
    assert (ready.train_size, ready.val_size) == (len(xo_data.train), len(xo_data.val))
    assert ready.steps_per_epoch == len(trainer.train_batches) and ready.epochs == 1
    assert ready.precision == "fp32" and ready.device.startswith("CPU")
    # the probe images as stored (uint8), the same ones the normalised probe is made from
    np.testing.assert_array_equal(ready.probe_images, xo_data.val.x[:8].numpy())


def test_epoch_reports_the_most_confident_mistakes(xo_data):
    # a learning rate this small leaves the network near chance: mistakes are certain
    trainer, events = train(xo_data, lr=1e-7, optimizer="sgd")
    epoch = next(e for e in events if isinstance(e, EpochEvent))
    wrong = epoch.wrong_count
    assert wrong == int(epoch.confusion.sum() - np.trace(epoch.confusion)) and wrong > 0
    k = len(epoch.wrong_images)
    assert k == min(MISTAKES_SHOWN, wrong)
    assert epoch.wrong_images.shape == (k, 1, 32, 32)
    assert np.all(epoch.wrong_true != epoch.wrong_predicted)
    assert np.all(np.diff(epoch.wrong_confidence) <= 0)    # most confident first
    assert np.all((epoch.wrong_confidence >= 0.5) & (epoch.wrong_confidence <= 1))
    # each image really is a validation image of its true class, and the model
    # really predicts the reported class for it
    model = trainer.model.eval()
    for image, true, predicted in zip(epoch.wrong_images, epoch.wrong_true,
                                      epoch.wrong_predicted, strict=True):
        same = (xo_data.val.x.numpy() == image).all(axis=(1, 2, 3))
        assert same.any() and int(xo_data.val.y[np.flatnonzero(same)[0]]) == true
        x = trainer.train_batches.normalize(torch.from_numpy(image[None]))
        assert int(model(x).argmax(1)) == predicted


def test_no_mistakes_no_images(xo_data):
    trainer, events = train(xo_data, epochs=4, lr=3e-3)
    last = [e for e in events if isinstance(e, EpochEvent)][-1]
    if last.wrong_count == 0:
        assert last.wrong_images is None
    else:  # still learning: then the fields are consistent
        assert len(last.wrong_images) == min(MISTAKES_SHOWN, last.wrong_count)


def test_probe_helpers_match_the_module(xo_data):
    model = compile_graph(xo()).eval()
    x = torch.randn(2, 1, 32, 32)
    maps = activations(model, x, ["conv1", "relu2", "fc", "no-such-block"])
    assert set(maps) == {"conv1", "relu2", "fc"}
    torch.testing.assert_close(torch.from_numpy(maps["conv1"]), model.conv1(x)[0])
    torch.testing.assert_close(torch.from_numpy(maps["fc"]), model(x)[0])
    assert model.training is False
    torch.testing.assert_close(torch.from_numpy(kernels(model, "conv1")), model.conv1.weight)
    assert kernels(model, "relu1") is None and kernels(model, "fc") is None


def test_probe_image_and_kernels_in_feature_map_events(xo_data):
    events = []
    cfg = TrainConfig(epochs=1, batch_size=32, device="cpu", probe_every=1)
    trainer = Trainer(xo(), cfg, dataset=xo_data, probe_nodes=["conv1"], report_interval=0,
                      callback=lambda e: (events.append(e), isinstance(e, StepEvent)
                                          and e.global_step == 3 and trainer.set_probe_index(5)))
    trainer.run()
    maps = [e for e in events if isinstance(e, FeatureMapEvent)]
    # the switch asked for while reporting step 3 applies from that step's probe on
    assert {e.probe_index for e in maps if e.global_step < 3} == {0}
    assert {e.probe_index for e in maps if e.global_step >= 3} == {5}
    assert all(e.kernels.shape == (8, 1, 3, 3) for e in maps)


def drain(process: TrainingProcess, timeout: float = 60.0) -> list:
    events, deadline = [], time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll(0.2):
            try:
                events.append(process.recv())
            except EOFError:
                break
            if isinstance(events[-1], DoneEvent | FailedEvent):
                break
    return events


def test_training_process_trains_and_obeys_commands(xo_data, tmp_path):
    cfg = TrainConfig(epochs=50, batch_size=16, device="cpu", probe_every=1)
    process = TrainingProcess(xo(), cfg, out_dir=tmp_path, dataset=xo_data,
                              probe_nodes=["conv1"], report_interval=0, threads=1)
    try:
        events = []
        while not any(isinstance(e, StepEvent) and e.global_step >= 3 for e in events):
            assert process.poll(60), "no event from the training process"
            events.append(process.recv())
        assert isinstance(events[0], ReadyEvent)
        assert process.send("probe_nodes", ("relu2",))
        while not any(isinstance(e, FeatureMapEvent) and e.node == "relu2" for e in events):
            assert process.poll(60), "the probe switch was not obeyed"
            events.append(process.recv())
        assert process.send("stop")
        events += drain(process)
    finally:
        process.kill()
    done = events[-1]
    assert isinstance(done, DoneEvent) and done.stopped and done.epochs_completed < 50
    assert done.checkpoint is not None and done.checkpoint.exists()
    assert "relu2" in {e.node for e in events if isinstance(e, FeatureMapEvent)}
    with pytest.raises(ValueError):
        process.send("format the disk")


def test_training_child_stops_when_its_parent_goes_away(xo_data, tmp_path):
    cfg = TrainConfig(epochs=500, batch_size=16, device="cpu")
    process = TrainingProcess(xo(), cfg, out_dir=tmp_path, dataset=xo_data, threads=1)
    try:
        assert process.poll(60)
        process.recv()
        process.close()           # as if the application had died: both pipes close
        assert process.join(60), "the child kept training without its parent"
    finally:
        process.kill()
    assert (tmp_path / "model.pt").exists()   # it stopped cleanly and saved


def test_a_killed_child_ends_the_event_stream(xo_data):
    cfg = TrainConfig(epochs=500, batch_size=16, device="cpu")
    process = TrainingProcess(xo(), cfg, dataset=xo_data, threads=1)
    try:
        assert process.poll(60)
        process.recv()
        os.kill(process._process.pid, signal.SIGKILL)
        assert process.join(30)
        with pytest.raises(EOFError):
            while True:
                assert process.poll(5)
                process.recv()
    finally:
        process.kill()
    assert process.exitcode == -signal.SIGKILL


def test_device_choices_name_the_gpu_and_its_memory(monkeypatch):
    from types import SimpleNamespace

    from engine.device import available_devices

    here = dict(available_devices())
    assert "cpu" in here and "auto" in here
    if not torch.cuda.is_available():
        assert "no GPU" in here["auto"] and "cuda" not in here
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.setattr(torch.cuda, "get_device_properties",
                        lambda device: SimpleNamespace(name="NVIDIA H100 80GB HBM3",
                                                       total_memory=80 * 2**30))
    choices = dict(available_devices())
    assert choices["cuda"] == "cuda: NVIDIA H100 80GB HBM3 (80.0 GiB)"
    assert "NVIDIA H100" in choices["auto"] and choices["cpu"].startswith("CPU")


@pytest.mark.parametrize("seconds, expected", [(1e-9, "every step"), (3600.0, "first only")])
def test_probes_by_time_whatever_a_step_takes(xo_data, seconds, expected):
    events = []
    cfg = TrainConfig(epochs=1, batch_size=32, device="cpu", probe_seconds=seconds)
    trainer = Trainer(xo(), cfg, dataset=xo_data, probe_nodes=["conv1"], report_interval=0,
                      callback=events.append)
    trainer.run()
    steps = len(trainer.train_batches)
    probed = [e.global_step for e in events if isinstance(e, FeatureMapEvent)]
    if expected == "every step":              # the last step's probe is the epoch's end
        assert probed == list(range(1, steps + 1))
    else:                                     # step one (maps at once), then the epoch end
        assert probed == [1, steps]
