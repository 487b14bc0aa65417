"""engine.distributed and the trainer in a process group (SPEC §10): each process's
share of a global batch, and a two-process gloo run of the Trainer itself (frozen
nodes, validation, resume) against one process. Every wait is bounded."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp

from engine import Graph, distributed
from engine.data import Augment, Batches, ImageSet
from engine.train import Trainer
from engine.train_config import TrainConfig

GRAPH = {"format": "convas.graph", "version": 1, "name": "small",
         "nodes": [{"id": "input", "type": "Input",
                    "params": {"channels": 1, "height": 8, "width": 8}},
                   {"id": "conv", "type": "Conv2d",
                    "params": {"out_channels": 6, "kernel_size": 3}, "frozen": True},
                   {"id": "relu", "type": "Activation", "params": {"function": "relu"}},
                   {"id": "flatten", "type": "Flatten", "params": {}},
                   {"id": "fc", "type": "Linear", "params": {"out_features": 10}},
                   {"id": "out", "type": "Output", "params": {}}],
         "edges": [{"from": a, "to": b} for a, b in (("input", "conv"), ("conv", "relu"),
                                                     ("relu", "flatten"), ("flatten", "fc"),
                                                     ("fc", "out"))]}
# 29 is odd and leaves a last batch of 18 out of 500 × 0.8 images: every share uneven
CONFIG = dict(dataset="digits", limit=400, epochs=1, batch_size=29, optimizer="sgd", lr=0.05,
              momentum=0.9, seed=5, device="cpu")


def images(n: int = 23) -> ImageSet:
    g = torch.Generator().manual_seed(0)
    return ImageSet(torch.randint(0, 256, (n, 1, 6, 6), dtype=torch.uint8, generator=g),
                    torch.arange(n) % 3)


@pytest.mark.parametrize("world", [2, 3, 4])
def test_the_shares_of_a_global_batch_are_the_one_process_batch(world):
    data = images()
    common = dict(mean=[0.5], std=[0.25], shuffle=True, seed=7,
                  augment=Augment(crop_padding=2, hflip=True))
    whole = list(Batches(data, 10, **common))           # 10, 10, 3: the last is uneven
    shares = [list(Batches(data, 10, rank=r, world_size=world, **common))
              for r in range(world)]
    assert all(len(s) == len(whole) for s in shares)
    for i, (x, y) in enumerate(whole):
        sizes = [len(s[i][1]) for s in shares]
        assert max(sizes) - min(sizes) <= 1 and sum(sizes) == len(y)
        assert torch.equal(torch.cat([s[i][0] for s in shares]), x)
        assert torch.equal(torch.cat([s[i][1] for s in shares]), y)


def test_a_rank_outside_the_world_is_refused():
    with pytest.raises(ValueError, match="rank 2 is not one of 2 processes"):
        Batches(images(), 4, mean=[0.5], std=[0.25], rank=2, world_size=2)


def test_a_lone_process_is_rank_0_of_1():
    world = distributed.current()
    assert (world.rank, world.size, world.main, world.distributed) == (0, 1, True, False)
    t = torch.ones(3)
    assert torch.equal(distributed.all_sum(t), torch.ones(3))


def _train(out: Path, resume: Path | None = None, epochs: int = 1) -> Trainer:
    trainer = Trainer(Graph.from_dict(GRAPH), TrainConfig.from_dict(CONFIG, epochs=epochs),
                      out_dir=out, resume=resume)
    result = trainer.run()
    assert type(result).__name__ == "DoneEvent", getattr(result, "reason", result)
    return trainer


def _worker(rank: int, out: str) -> None:
    os.environ.update(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE="2",
                      OMP_NUM_THREADS="1")
    torch.set_num_threads(1)
    # a file store: no port to pick, so none another test could be using
    world = distributed.setup("cpu", timeout=20, init_method=f"file://{out}/store")
    try:
        first = Path(out) / "first"
        _train(first if world.main else Path(out) / f"ignored{rank}")
        distributed.all_sum(torch.zeros(1))  # rank 0 has written the checkpoint
        _train(Path(out) / "resumed", resume=first / "model.pt", epochs=2)
    finally:
        distributed.teardown(wait=True)


def test_two_trainers_in_a_process_group_train_as_one(tmp_path):
    context = mp.start_processes(_worker, args=(str(tmp_path),), nprocs=2,
                                 join=False, start_method="spawn")
    for _ in range(120):  # at most 60 s: a hung collective fails the test
        if context.join(timeout=0.5):
            break
    else:
        for p in context.processes:
            p.kill()
        pytest.fail("the two processes did not finish within 60 s")
    assert not (tmp_path / "ignored1").exists()  # rank 1 writes nothing

    one = _train(tmp_path / "one_first")
    one_resumed = _train(tmp_path / "one_resumed", resume=tmp_path / "one_first" / "model.pt",
                         epochs=2)
    for name, alone in (("first", one), ("resumed", one_resumed)):
        saved = torch.load(tmp_path / name / "model.pt", weights_only=True)
        assert saved["epoch"] == alone.metrics[-1]["epoch"]
        mine = alone.model.state_dict()
        assert set(saved["state_dict"]) == set(mine)  # no "module." prefixes
        for key, value in mine.items():
            assert torch.linalg.norm(saved["state_dict"][key] - value) <= \
                1e-4 * torch.linalg.norm(value), (name, key)
        # the frozen conv never moved; validation is that of the whole set
        initial = Trainer(Graph.from_dict(GRAPH), TrainConfig.from_dict(CONFIG))
        initial._prepare()
        assert torch.equal(saved["state_dict"]["conv.weight"],
                           initial.model.state_dict()["conv.weight"])
        for column in ("train_loss", "train_accuracy", "val_loss", "val_accuracy"):
            assert saved["metrics"][-1][column] == pytest.approx(alone.metrics[-1][column],
                                                                 rel=1e-5), (name, column)
