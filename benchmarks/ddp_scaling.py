"""Scaling of ``convas train --nproc`` (SPEC §10): training images/s on one process and
on N processes of one thread each, at the same global batch, as a user runs them.

Each configuration is a real ``python -m designer train`` run (``--nproc N`` going
through torch.distributed.run and DistributedDataParallel over gloo); its speed is
the training images of an epoch over that epoch's ``seconds`` in metrics.csv (the
training loop alone: no start-up, no validation), the best of the epochs after the
first (which warms up); with ``--repeat`` the runs alternate and each configuration
keeps its best, so a burst of other work on the machine does not decide. Scaling
efficiency = images/s on N processes / (N × images/s on one). Goal: ≥ 0.85 for
ResNet-18 at 32×32 with 2 processes on 2 cores.

The global batch is each template's own (X vs O 64, ResNet-18 256) unless ``--batch``
says otherwise. It matters: every step all-reduces the whole gradient (ResNet-18:
44 MB over gloo, ~0.1 s on two busy cores), so the smaller each process's share, the
larger the part of a step that communication takes.

The last two columns separate the machine from DDP: N independent one-process runs at
once, each on a 1/N share of the batch, summed (no communication at all), and the
distributed run's speed as a share of that. On a machine whose cores other work
also uses, the efficiency falls with that ceiling; "of those" is DDP's own cost.

    python benchmarks/ddp_scaling.py                    # X vs O and ResNet-18, 1 and 2
    python benchmarks/ddp_scaling.py --models resnet18 --images 768 --epochs 4
    python benchmarks/ddp_scaling.py --batch 64         # the same global batch for both
    python benchmarks/ddp_scaling.py --device cuda      # one process against --nproc gpu

On CUDA the comparison is one process against ``--nproc gpu`` (one process per visible
GPU over NCCL; on a one-GPU machine, world size 1, which measures what the launcher,
NCCL and DistributedDataParallel cost), and the "independent" columns are left out.

ResNet-18 is the template with its Input at 3×32×32 and 10 classes, on random
CIFAR-sized images (the content does not change the speed). Run it on an otherwise
idle machine: processes that share cores with other work measure that work too.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
TEMPLATES = ROOT / "resources" / "templates"


DEVICE = "cpu"


def xo_design(folder: Path, batch: int | None, epochs: int,
              images: int) -> tuple[Path, list[str]]:
    graph = json.loads((TEMPLATES / "x_vs_o.convas.json").read_text())
    graph["training"].update(epochs=epochs, device=DEVICE, val_fraction=0.0,
                             batch_size=batch or graph["training"]["batch_size"])
    path = folder / "xo.convas.json"
    path.write_text(json.dumps(graph))
    return path, ["--limit", str(images)]


def resnet_design(folder: Path, batch: int | None, epochs: int,
                  images: int) -> tuple[Path, list[str]]:
    graph = json.loads((TEMPLATES / "resnet18.convas.json").read_text())
    batch = batch or graph["training"]["batch_size"]
    for node in graph["nodes"]:
        if node["type"] == "Input":
            node["params"].update(channels=3, height=32, width=32)
        if node["id"] == "fc":
            node["params"]["out_features"] = 10
    graph["training"] = dict(dataset=str(folder / "random32.npz"), epochs=epochs,
                             batch_size=batch, optimizer="sgd", lr=0.01, momentum=0.9,
                             device=DEVICE, val_fraction=0.0)
    rng = np.random.default_rng(0)
    np.savez(folder / "random32.npz", x=rng.integers(0, 256, (images, 32, 32, 3), np.uint8),
             y=np.arange(images) % 10)
    path = folder / "resnet18_32.convas.json"
    path.write_text(json.dumps(graph))
    return path, []


MODELS = {"xvso": xo_design, "resnet18": resnet_design}


def images_per_second(design: Path, extra: list[str], nproc: int | str,
                      out: Path) -> float:
    """One run; the best epoch after the first, in training images per second."""
    return _runs(design, extra, out, nproc=nproc)


def ceiling(design: Path, extra: list[str], nproc: int, out: Path) -> float:
    """What the machine allows: ``nproc`` independent one-process runs at once, each with
    a 1/nproc share of the global batch and no communication; their images/s summed.
    Cores that other work is using, or a memory bus the processes share, lower this as
    much as they lower the distributed run, so many / ceiling is what DDP itself costs."""
    graph = json.loads(design.read_text())
    graph["training"]["batch_size"] = max(1, graph["training"]["batch_size"] // nproc)
    half = design.with_name("share-" + design.name)
    half.write_text(json.dumps(graph))
    return _runs(half, extra, out, copies=nproc)


def _runs(design: Path, extra: list[str], out: Path, *, nproc: int | str = 1,
          copies: int = 1) -> float:
    """``copies`` runs at once, each the best epoch after the first, images/s summed."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    procs = []
    for i in range(copies):
        command = [sys.executable, "-m", "designer", "train", str(design), "--out",
                   str(out / str(i)), *extra, *(["--nproc", str(nproc)] if nproc != 1 else [])]
        procs.append((command, out / str(i), subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            text=True)))
    total = 0.0
    for command, folder, proc in procs:
        _, err = proc.communicate(timeout=3600)
        if proc.returncode != 0:
            raise SystemExit(f"{' '.join(command)} failed:\n{err}")
        rows = list(csv.DictReader((folder / "metrics.csv").open()))
        total += _train_images(err) / min(float(r["seconds"]) for r in rows[1:] or rows)
    return total


def _train_images(stderr: str) -> int:
    """The training image count from the run's "N training / M validation" line."""
    for line in stderr.splitlines():
        if " training / " in line:
            return int(line.split(" training / ")[0].rsplit(" ", 1)[-1].replace(",", ""))
    raise SystemExit(f"no image count in the run's output:\n{stderr}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", choices=sorted(MODELS),
                        default=["xvso", "resnet18"])
    parser.add_argument("--nproc", type=int, default=2, help="processes to compare with one")
    parser.add_argument("--batch", type=int, help="global batch (default: the template's)")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--images", type=int, default=1024, help="training images")
    parser.add_argument("--repeat", type=int, default=2, help="runs of each, best kept")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu",
                        help="cuda: one process against --nproc gpu")
    args = parser.parse_args()
    global DEVICE
    DEVICE = args.device
    if DEVICE == "cuda":
        import torch
        args.nproc = torch.cuda.device_count()
        if not args.nproc:
            raise SystemExit("--device cuda: CUDA sees no GPU here")
        print(f"{args.nproc} × {torch.cuda.get_device_name(0)}, torch {torch.__version__}; "
              f"{args.nproc} processes = --nproc gpu (NCCL)")
    print(f"{'model':<10} {'batch':>6} {'1 process':>12} {f'{args.nproc} processes':>13} "
          f"{'efficiency':>11} {f'{args.nproc} independent':>15} {'of those':>9}")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for name in args.models:
            design, extra = MODELS[name](folder, args.batch, args.epochs, args.images)
            one = many = free = 0.0
            for _ in range(args.repeat):
                one = max(one, images_per_second(design, extra, 1, folder / f"{name}-1"))
                many = max(many, images_per_second(
                    design, extra, "gpu" if DEVICE == "cuda" else args.nproc,
                    folder / f"{name}-n"))
                if DEVICE == "cpu":
                    free = max(free, ceiling(design, extra, args.nproc, folder / f"{name}-c"))
            batch = json.loads(design.read_text())["training"]["batch_size"]
            print(f"{name:<10} {batch:>6} {one:>10.0f}/s {many:>11.0f}/s "
                  f"{many / (args.nproc * one):>11.2f}"
                  + (f" {free:>13.0f}/s {many / free:>9.2f}" if free else ""), flush=True)


if __name__ == "__main__":
    main()
