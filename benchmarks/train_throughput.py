"""Training throughput of Convas's loop over a hand-written PyTorch loop.

Both train the same network (two compiled copies of one template, same initial
weights) on the same data held on the device. They alternate epoch by epoch in one
run (the hand-written epoch runs inside Convas's end-of-epoch callback), so machine
noise hits both alike. The hand-written loop is the lean one a careful engineer
writes: data preloaded on the device, random permutation per epoch, no DataLoader, no
per-step sync. Goal: convas / hand-written images/s ≥ 0.97.

    python benchmarks/train_throughput.py                       # CPU, X-vs-O on shapes
    python benchmarks/train_throughput.py --template lenet5 --dataset shapes --size 32
    python benchmarks/train_throughput.py --device cuda --template resnet18 --precision bf16
    python benchmarks/train_throughput.py --template unet_shapes      # segmentation
    python benchmarks/train_throughput.py --template yolo_shapes      # detection

A segmentation template (its Output's task) trains on ``shapes-seg`` unless
``--dataset`` says otherwise, and the hand-written loop then uses the per-pixel loss
with 255 ignored, as the trainer does; a detection template trains on ``shapes-det``
and both loops use the YOLO loss (engine.detection.YoloLoss, with the Output's
anchors), the loss a hand-written detector would import.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from importlib import resources
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine import Graph, compile_graph  # noqa: E402
from engine.data import load_dataset  # noqa: E402
from engine.detection import YoloLoss  # noqa: E402
from engine.train import Trainer  # noqa: E402
from engine.train_config import TrainConfig  # noqa: E402
from engine.train_events import EpochEvent, FailedEvent, ReadyEvent  # noqa: E402


def handwritten_epoch(model: nn.Module, opt: torch.optim.Optimizer, x: torch.Tensor,
                      y: torch.Tensor, mean: torch.Tensor, std: torch.Tensor, batch: int,
                      amp: torch.dtype | None, channels_last: bool, masks: bool,
                      loss_fn: nn.Module) -> float:
    """One epoch of the textbook loop; returns images per second."""
    device = x.device
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    perm = torch.randperm(len(x), device=device)
    total = torch.zeros((), device=device)
    model.train()
    for i in range(0, len(x), batch):
        idx = perm[i:i + batch]
        xb = (x[idx].float().div_(255) - mean) / std
        # one memory layout throughout, as the trainer has (a 1-channel batch made by
        # broadcasting would otherwise come out NHWC by accident)
        xb = xb.contiguous(memory_format=torch.channels_last if channels_last
                           else torch.contiguous_format)
        with torch.autocast(device.type, dtype=amp, enabled=amp is not None):
            yb = y[idx].long() if masks else y[idx]
            loss = loss_fn(model(xb), yb)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        total += loss.detach()
    total.item()
    return len(x) / (time.perf_counter() - start)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--template", default="x_vs_o")
    ap.add_argument("--dataset", default=None,
                    help="default: shapes, or shapes-seg for a segmentation template")
    ap.add_argument("--classes", default=None,
                    help="comma-separated subset ('' for all; default X,O for shapes)")
    ap.add_argument("--count", type=int, default=4000, help="shapes: images generated")
    ap.add_argument("--size", type=int, default=None, help="resize the Input to this H=W")
    ap.add_argument("--epochs", type=int, default=6)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--precision", default="fp32", choices=("fp32", "bf16", "fp16"))
    ap.add_argument("--channels-last", action=argparse.BooleanOptionalAction, default=None,
                    help="NHWC on both sides (default: the trainer's choice for the device)")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    text = (resources.files("resources") / "templates" / f"{args.template}.convas.json")
    graph = Graph.loads(text.read_text("utf-8"), args.template)
    output = next(n for n in graph.nodes if graph.type_of(n) == "Output")
    task = graph.params_of(output).get("task", "classification")
    segmentation = task == "segmentation"
    args.dataset = args.dataset or {"segmentation": "shapes-seg",
                                    "detection": "shapes-det"}.get(task, "shapes")
    if args.classes is None:
        args.classes = "X,O" if args.dataset == "shapes" else ""
    classes = [c for c in args.classes.split(",") if c] or None
    data = load_dataset(args.dataset, classes=classes, options={"count": args.count},
                        val_fraction=0.0)
    c, h, w = data.image_shape
    size = args.size or h
    if args.size:
        data = load_dataset(args.dataset, classes=classes, val_fraction=0.0,
                            options={"count": args.count, "size": size})
    inp = next(n for n in graph.nodes if graph.type_of(n) == "Input")
    graph.set_param(inp, "channels", c)
    graph.set_param(inp, "height", size)
    graph.set_param(inp, "width", size)
    if task == "classification":  # the others are made for their dataset's classes
        graph.set_param(graph.inputs_of(output)[0][1], "out_features", data.num_classes)
    if task == "detection":
        anchors = graph.params_of(output).get("anchors", [[8, 8], [16, 16], [32, 32]])
        loss_fn: nn.Module = YoloLoss(anchors, (size, size), data.num_classes).to(args.device)
    else:
        loss_fn = nn.CrossEntropyLoss(ignore_index=255 if segmentation else -100)
    # the YOLO loss sums over the grid's cells: SGD at 0.01 diverges on it
    lr = 0.001 if task == "detection" else 0.01

    config = TrainConfig(dataset=args.dataset, epochs=args.epochs, batch_size=args.batch,
                         optimizer="sgd", lr=lr, momentum=0.9, device=args.device,
                         precision=args.precision, channels_last=args.channels_last,
                         val_fraction=0.0)
    device = torch.device(args.device)
    amp = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[args.precision]
    torch.manual_seed(0)
    hand = compile_graph(graph).to(device)
    trainer = Trainer(graph, config, callback=lambda event: on_event(event), dataset=data)
    hand_opt = torch.optim.SGD(hand.parameters(), lr=lr, momentum=0.9)
    x = data.train.x.to(device)
    y = data.train.y.to(device)
    mean = torch.tensor(data.mean, device=device).view(1, -1, 1, 1)
    std = torch.tensor(data.std, device=device).view(1, -1, 1, 1)
    convas_rates: list[float] = []
    hand_rates: list[float] = []

    def on_event(event) -> None:
        if isinstance(event, ReadyEvent) and trainer.channels_last:
            hand.to(memory_format=torch.channels_last)  # the layout the trainer chose
        if isinstance(event, EpochEvent):
            convas_rates.append(len(data.train) / event.seconds)
            hand_rates.append(handwritten_epoch(hand, hand_opt, x, y, mean, std, args.batch,
                                                amp, trainer.channels_last, segmentation,
                                                loss_fn))

    result = trainer.run()
    if isinstance(result, FailedEvent):
        raise SystemExit(f"training failed: {result.reason}")
    # a diverged loop runs on NaNs and denormals at another speed: no comparison then
    if not all(torch.isfinite(p).all() for p in hand.parameters()):
        raise SystemExit("the hand-written loop diverged (non-finite weights): its speed "
                         "says nothing; lower the learning rate")
    # the first epoch of each warms up allocators and caches
    conv = statistics.median(convas_rates[1:])
    handm = statistics.median(hand_rates[1:])
    print(f"{args.template} on {args.dataset} ({len(data.train)} images {c}×{size}×{size}), "
          f"batch {args.batch}, {args.device}, {args.precision}"
          f"{', channels-last' if trainer.channels_last else ''}, {args.epochs} epochs each, "
          f"interleaved")
    print(f"hand-written loop: {handm:,.0f} images/s (median of epochs 2–{args.epochs})")
    print(f"convas Trainer:    {conv:,.0f} images/s")
    ratio = conv / handm
    print(f"convas/hand-written throughput: {ratio:.3f} (goal ≥ 0.97) "
          f"{'OK' if ratio >= 0.97 else 'BELOW GOAL'}")


if __name__ == "__main__":
    main()
