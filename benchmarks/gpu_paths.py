"""The CUDA paths of the trainer: mixed precision, channels-last, torch.compile, and the
out-of-memory answer. Needs an NVIDIA GPU; prints one line per configuration.

    python benchmarks/gpu_paths.py                 # ResNet-18 on shapes at 64×64
    python benchmarks/gpu_paths.py --size 96 --epochs 3
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from importlib import resources
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine import Graph  # noqa: E402
from engine.data import load_dataset  # noqa: E402
from engine.device import describe_device  # noqa: E402
from engine.train import Trainer  # noqa: E402
from engine.train_config import TrainConfig  # noqa: E402
from engine.train_events import DoneEvent, EpochEvent, FailedEvent, StepEvent  # noqa: E402


def resnet18_for(data) -> Graph:
    text = (resources.files("resources") / "templates" / "resnet18.convas.json").read_text()
    graph = Graph.loads(text, "resnet18")
    c, h, w = data.image_shape
    for key, value in (("channels", c), ("height", h), ("width", w)):
        graph.set_param("input", key, value)
    graph.set_param("fc", "out_features", data.num_classes)
    return graph


def train(data, epochs: int, batch: int, **settings):
    rates: list[float] = []
    epochs_seen: list[EpochEvent] = []

    def on_event(event) -> None:
        if isinstance(event, StepEvent) and event.epoch > 1:  # epoch 1 warms up / compiles
            rates.append(event.images_per_s)
        elif isinstance(event, EpochEvent):
            epochs_seen.append(event)

    config = TrainConfig(epochs=epochs, batch_size=batch, device="cuda", optimizer="sgd",
                         lr=0.05, momentum=0.9, schedule="cosine", **settings)
    start = time.perf_counter()
    result = Trainer(resnet18_for(data), config, dataset=data, callback=on_event,
                     report_interval=0.5).run()
    return result, rates, epochs_seen, time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--count", type=int, default=20000)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--skip-oom", action="store_true")
    args = ap.parse_args()
    if not torch.cuda.is_available():
        raise SystemExit("no CUDA GPU here: this benchmark measures the CUDA paths")
    device = torch.device("cuda")
    print(f"device: {describe_device(device)}, torch {torch.__version__}")
    data = load_dataset("shapes", options={"count": args.count, "size": args.size})
    print(f"data: {data.describe()}; ResNet-18, batch {args.batch}, SGD, cosine, "
          f"{args.epochs} epochs")
    configs = [
        ("fp32", dict(precision="fp32", channels_last=False)),
        ("fp32 + channels-last", dict(precision="fp32", channels_last=True)),
        ("bf16", dict(precision="bf16", channels_last=False)),
        ("bf16 + channels-last", dict(precision="bf16", channels_last=True)),
        ("fp16 + channels-last", dict(precision="fp16", channels_last=True)),
        ("bf16 + channels-last + torch.compile",
         dict(precision="bf16", channels_last=True, compile=True)),
    ]
    for name, settings in configs:
        result, rates, epochs, wall = train(data, args.epochs, args.batch, **settings)
        if isinstance(result, FailedEvent):
            print(f"{name:40s} FAILED: {result.reason}")
            continue
        acc = epochs[-1].val_accuracy
        print(f"{name:40s} {statistics.median(rates):>9,.0f} images/s   "
              f"val acc {100 * acc:5.1f}%   wall {wall:5.1f} s")
    if args.skip_oom:
        return
    big = load_dataset("shapes", options={"count": 4096, "size": 224}, val_fraction=0.0)
    result, _, _, _ = train(big, 1, 4096, precision="fp32", channels_last=True)
    print(f"batch 4096 at 224×224: {type(result).__name__}: "
          f"{getattr(result, 'reason', '')}")
    if isinstance(result, FailedEvent) and result.kind == "oom":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
        suggested = result.suggestion["batch_size"]
        again, rates, _, _ = train(big, 1, suggested, precision="fp32", channels_last=True)
        peak = torch.cuda.max_memory_allocated() / 2**30
        print(f"suggested batch {suggested}: {type(again).__name__}"
              f"{'' if isinstance(again, DoneEvent) else ': ' + again.reason}; "
              f"peak {peak:.1f} GiB")


if __name__ == "__main__":
    main()
