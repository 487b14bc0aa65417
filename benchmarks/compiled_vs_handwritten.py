"""Training-step time of a Convas-compiled ResNet-18 against a hand-written one.

The Convas model is ``resources/templates/resnet18.convas.json`` (or, if that file is
missing, the same ResNet-18 graph built in code) with its Input and final Linear
adjusted in memory to the benchmark's image size and class count, compiled with
``engine.compile_graph`` (a ``torch.fx`` GraphModule). The hand-written model is a
plain torchvision-style ``nn.Module`` (BasicBlock, inplace ReLU, AdaptiveAvgPool2d +
flatten), defined below; at 1000 classes it has torchvision's 11,689,512 parameters.

Both models get the same parameter count (asserted), the same starting weights (the
state_dict copied across in order, every shape checked), the same batches and the
same optimizer (SGD, momentum 0.9). Their training steps (forward, cross-entropy,
backward, optimizer step) are interleaved in one run, in the order A B B A A B ...,
so machine noise and drift hit both alike. The first losses must agree, which
shows both models compute the same function. Printed: each median step time and
the ratio compiled/handwritten (goal ≤ 1.02), and the median of the per-round ratios
(steady under a slowly changing machine load).

Run from the repository root, e.g.::

    python benchmarks/compiled_vs_handwritten.py
    python benchmarks/compiled_vs_handwritten.py --batch 64 --size 224 --steps 30 \\
        --device cuda --channels-last

Exits 0 once the figures are printed (whether or not the goal is met); 1 if the two
models disagree.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402
from torch import nn  # noqa: E402

from engine import Graph, analyze, compile_graph  # noqa: E402

TEMPLATE = ROOT / "resources" / "templates" / "resnet18.convas.json"
GOAL = 1.02
RESNET18_PARAMS = 11_689_512  # torchvision's resnet18 at 1000 classes


# ---- the hand-written reference (torchvision's design) -------------------------------


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, inplanes: int, planes: int, stride: int = 1,
                 downsample: nn.Module | None = None) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        if self.downsample is not None:
            identity = self.downsample(x)
        out += identity
        return self.relu(out)


class ResNet18(nn.Module):
    def __init__(self, num_classes: int = 1000) -> None:
        super().__init__()
        self.inplanes = 64
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        self.layer1 = self._make_layer(64, 2)
        self.layer2 = self._make_layer(128, 2, stride=2)
        self.layer3 = self._make_layer(256, 2, stride=2)
        self.layer4 = self._make_layer(512, 2, stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(512, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def _make_layer(self, planes: int, blocks: int, stride: int = 1) -> nn.Sequential:
        downsample = None
        if stride != 1 or self.inplanes != planes:
            downsample = nn.Sequential(nn.Conv2d(self.inplanes, planes, 1, stride, bias=False),
                                       nn.BatchNorm2d(planes))
        layers = [BasicBlock(self.inplanes, planes, stride, downsample)]
        self.inplanes = planes
        layers += [BasicBlock(planes, planes) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        x = torch.flatten(self.avgpool(x), 1)
        return self.fc(x)


# ---- the Convas model ----------------------------------------------------------------


def resnet18_graph() -> Graph:
    """The same ResNet-18 built with the engine's API (used when the template is missing)."""
    g = Graph("ResNet-18")
    chain = [
        ("input", "Input", {"channels": 3, "height": 224, "width": 224}),
        ("conv1", "Conv2d", {"out_channels": 64, "kernel_size": 7, "stride": 2, "padding": 3,
                             "bias": False}),
        ("bn1", "BatchNorm", {}),
        ("relu1", "Activation", {"function": "relu"}),
        ("maxpool", "MaxPool2d", {"kernel_size": 3, "stride": 2, "padding": 1}),
    ]
    for stage, width in enumerate((64, 128, 256, 512), start=1):
        for i in range(2):
            params = {"out_channels": width}
            if stage > 1 and i == 0:
                params["stride"] = 2
            chain.append((f"layer{stage}_{i}", "ResidualBlock", params))
    chain += [("avgpool", "GlobalAvgPool", {}), ("fc", "Linear", {"out_features": 1000}),
              ("out", "Output", {})]
    prev = None
    for nid, type_name, params in chain:
        g.add_node(nid, type_name, params)
        if prev is not None:
            g.add_edge(prev, nid)
        prev = nid
    return g


def convas_model(size: int, classes: int) -> tuple[nn.Module, str]:
    if TEMPLATE.exists():
        g, source = Graph.load(TEMPLATE), str(TEMPLATE.relative_to(ROOT))
    else:
        g, source = resnet18_graph(), "built in code (template not found)"
    inputs = [n for n in g if g.type_of(n) == "Input"]
    linears = [n for n in g if g.type_of(n) == "Linear"]
    if len(inputs) != 1 or not linears:
        raise SystemExit(f"{source} does not look like a ResNet-18 graph")
    g.set_param(inputs[0], "height", size)
    g.set_param(inputs[0], "width", size)
    report = analyze(g)
    fc = [n for n in linears if g.inputs_of(report.output_id)[0][1] == n] or linears[-1:]
    g.set_param(fc[0], "out_features", classes)
    report = analyze(g)
    if not report.ok:
        raise SystemExit("the ResNet-18 graph has errors:\n"
                         + "\n".join(str(e) for e in report.errors))
    if report.output_shape != (classes,):
        raise SystemExit(f"output shape {report.output_shape}, expected ({classes},)")
    return compile_graph(g, report), source


def count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def copy_weights(src: nn.Module, dst: nn.Module) -> bool:
    """Copy ``src``'s state_dict into ``dst`` entry by entry, in order, if every shape fits."""
    a, b = src.state_dict(), dst.state_dict()
    if len(a) != len(b) or any(x.shape != y.shape for x, y in zip(a.values(), b.values(),
                                                                    strict=True)):
        return False
    dst.load_state_dict(dict(zip(b.keys(), a.values(), strict=True)))
    return True


# ---- the measurement -----------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--batch", type=int, default=64, help="batch size (default 64)")
    ap.add_argument("--size", type=int, default=32, help="image height and width (default 32)")
    ap.add_argument("--classes", type=int, default=10, help="output classes (default 10)")
    ap.add_argument("--steps", type=int, default=40, help="measured steps per model (default 40)")
    ap.add_argument("--warmup", type=int, default=3, help="unmeasured steps first (default 3)")
    ap.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    ap.add_argument("--channels-last", action="store_true",
                    help="use the channels_last memory format for weights and batches")
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: no CUDA device is available")
    fmt = torch.channels_last if args.channels_last else torch.contiguous_format

    reference_1000 = count(ResNet18(1000))
    assert reference_1000 == RESNET18_PARAMS, reference_1000

    compiled, source = convas_model(args.size, args.classes)
    handwritten = ResNet18(args.classes)
    pc, ph = count(compiled), count(handwritten)
    assert pc == ph, f"parameter counts differ: compiled {pc:,}, handwritten {ph:,}"
    same_start = copy_weights(compiled, handwritten)

    models = {"compiled": compiled, "handwritten": handwritten}
    optims = {}
    for name, m in models.items():
        m.to(device=device, memory_format=fmt).train()
        optims[name] = torch.optim.SGD(m.parameters(), lr=0.01, momentum=0.9)
    loss_fn = nn.CrossEntropyLoss()

    gen = torch.Generator().manual_seed(args.seed)
    batches = [(torch.randn(args.batch, 3, args.size, args.size, generator=gen)
                .to(device=device, memory_format=fmt),
                torch.randint(0, args.classes, (args.batch,), generator=gen).to(device))
               for _ in range(4)]

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize()

    def step(name: str, i: int) -> tuple[float, float]:
        model, opt = models[name], optims[name]
        x, y = batches[i % len(batches)]
        sync()
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(model(x), y)
        loss.backward()
        opt.step()
        sync()
        return time.perf_counter() - t0, loss.item()

    times: dict[str, list[float]] = {name: [] for name in models}
    first_loss: dict[str, float] = {}
    last_loss: dict[str, float] = {}
    for i in range(args.warmup + args.steps):
        order = ("compiled", "handwritten") if i % 2 == 0 else ("handwritten", "compiled")
        for name in order:
            dt, loss = step(name, i)
            first_loss.setdefault(name, loss)
            last_loss[name] = loss
            if i >= args.warmup:
                times[name].append(dt)

    a, b = first_loss["compiled"], first_loss["handwritten"]
    if same_start and abs(a - b) > 1e-3 * max(1.0, abs(b)):
        print(f"the models disagree: first loss compiled {a:.6f}, handwritten {b:.6f}",
              file=sys.stderr)
        return 1

    mc = statistics.median(times["compiled"])
    mh = statistics.median(times["handwritten"])
    ratio = mc / mh
    # Each round's two steps ran back to back, so their ratio cancels slow drift in load.
    paired = statistics.median(c / h for c, h in zip(times["compiled"], times["handwritten"],
                                                     strict=True))
    print(f"ResNet-18 training step, batch {args.batch}, {args.size}×{args.size}, "
          f"{args.classes} classes, {device.type}"
          + (", channels_last" if args.channels_last else "")
          + f", {args.threads} thread(s), SGD momentum 0.9; {args.steps} measured steps each "
            f"after {args.warmup} warm-up, interleaved")
    print(f"Convas model: {source}; parameters {pc:,} each "
          f"({RESNET18_PARAMS:,} at 1000 classes); "
          + ("same starting weights" if same_start else "weights seeded separately"))
    print(f"first loss: compiled {a:.5f}, handwritten {b:.5f}; last loss: compiled "
          f"{last_loss['compiled']:.5f}, handwritten {last_loss['handwritten']:.5f}")
    print(f"handwritten median step: {mh * 1e3:.1f} ms")
    print(f"compiled median step: {mc * 1e3:.1f} ms")
    print(f"compiled/handwritten median step: {ratio:.3f} (goal ≤ {GOAL:g}) "
          + ("OK" if ratio <= GOAL else "ABOVE GOAL")
          + f"; median of per-round ratios {paired:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
