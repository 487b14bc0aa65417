"""One epoch of training from a small fixture file in every supported format."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from data_fixtures import make_cifar, make_image_folder, make_mnist

from engine import Graph
from engine.data import load_dataset
from engine.train import Trainer
from engine.train_config import TrainConfig
from engine.train_events import DoneEvent, EpochEvent

torch.set_num_threads(1)


def tiny_cnn(shape: tuple[int, int, int], classes: int) -> Graph:
    c, h, w = shape
    g = Graph("tiny")
    g.add_node("x", "Input", {"channels": c, "height": h, "width": w})
    g.add_node("conv", "Conv2d", {"out_channels": 4})
    g.add_node("relu", "Activation", {})
    g.add_node("gap", "GlobalAvgPool", {})
    g.add_node("fc", "Linear", {"out_features": classes})
    g.add_node("out", "Output", {})
    for a, b in [("x", "conv"), ("conv", "relu"), ("relu", "gap"), ("gap", "fc"), ("fc", "out")]:
        g.add_edge(a, b)
    return g


def write_npz(folder):
    rng = np.random.default_rng(0)
    path = folder / "set.npz"
    np.savez(path, x=rng.integers(0, 256, (24, 10, 10, 3), dtype=np.uint8),
             y=np.arange(24) % 4, classes=np.array(["a", "b", "c", "d"]))
    return path


FORMATS = {
    "idx": lambda d: make_mnist(d / "mnist") and d / "mnist",
    "idx.gz": lambda d: make_mnist(d / "mnist", gz=True) and d / "mnist",
    "cifar": lambda d: make_cifar(d / "cifar-10-batches-bin") and d / "cifar-10-batches-bin",
    "image folder": lambda d: make_image_folder(d / "pets", mode="RGB") or d / "pets",
    "npz": write_npz,
}


@pytest.mark.parametrize("fmt", FORMATS)
def test_one_epoch_from_each_file_format(tmp_path, fmt):
    source = FORMATS[fmt](tmp_path)
    data = load_dataset(str(source), seed=0)
    events = []
    result = Trainer(tiny_cnn(data.image_shape, data.num_classes),
                     TrainConfig(epochs=1, batch_size=8, device="cpu"), dataset=data,
                     callback=events.append, out_dir=tmp_path / "run").run()
    assert isinstance(result, DoneEvent), getattr(result, "reason", result)
    epoch = next(e for e in events if isinstance(e, EpochEvent))
    assert np.isfinite(epoch.train_loss)
    assert epoch.confusion.shape == (data.num_classes, data.num_classes)
    assert (tmp_path / "run" / "model.pt").exists()
