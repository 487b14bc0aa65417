"""Choosing where to train, and saying clearly when the choice cannot work."""

from __future__ import annotations

import torch

from .train_config import device_choice


class DeviceError(RuntimeError):
    """The requested device is not available here; the message says what to use instead."""


def resolve_device(name: str = "auto") -> torch.device:
    """``auto`` picks CUDA, then Apple's MPS, then the CPU."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if _mps_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name == "cuda":
        if not torch.cuda.is_available():
            why = ("this PyTorch is a CPU-only build" if torch.version.cuda is None
                   else "no NVIDIA GPU or driver was found")
            raise DeviceError(f"--device cuda was asked for, but {why} (torch "
                              f"{torch.__version__}): use --device cpu or --device auto, or "
                              f"install a CUDA build of torch (make TORCH_SPEC=...)")
        return torch.device("cuda")
    if name == "mps":
        if not _mps_available():
            raise DeviceError("--device mps needs an Apple-silicon Mac with PyTorch's MPS "
                              "backend: use --device cpu or --device auto")
        return torch.device("mps")
    if name == "cpu":
        return torch.device("cpu")
    raise DeviceError(f"unknown device {name!r}: use auto, cpu, cuda or mps")


def _mps_available() -> bool:
    backend = getattr(torch.backends, "mps", None)
    return bool(backend and backend.is_available())


def describe_device(device: torch.device) -> str:
    """'NVIDIA H100 80GB HBM3 (79.1 GiB)' or 'CPU (2 threads)', for progress lines."""
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        return f"{props.name} ({props.total_memory / 2**30:.1f} GiB)"
    if device.type == "mps":
        return "Apple GPU (MPS)"
    return f"CPU ({torch.get_num_threads()} thread{'s' if torch.get_num_threads() != 1 else ''})"


def free_memory(device: torch.device) -> int | None:
    """Bytes free on a CUDA device, for batch-size suggestions; None elsewhere."""
    if device.type != "cuda":
        return None
    free, _total = torch.cuda.mem_get_info(device)
    return free


def available_devices() -> list[tuple[str, str]]:
    """(value, label) for each device choice that can work here, for a device menu:
    the GPU's name and memory where there is one, so people see what 'auto' means."""
    import os

    cores = os.cpu_count() or 1
    cpu = f"CPU ({cores} core{'s' if cores != 1 else ''})"
    items: list[tuple[str, str]] = []
    if torch.cuda.is_available():
        gpus = [describe_device(torch.device("cuda", i))
                for i in range(torch.cuda.device_count())]
        items.append(("auto", f"auto ({gpus[0]})"))
        items.append(("cuda", f"cuda: {gpus[0]}" + (f" (+{len(gpus) - 1} more)"
                                                     if len(gpus) > 1 else "")))
    elif _mps_available():
        items.append(("auto", "auto (Apple GPU, MPS)"))
        items.append(("mps", "mps: Apple GPU"))
    else:
        items.append(("auto", "auto (CPU, no GPU found)"))
    items.append(("cpu", cpu))
    # several processes (SPEC §10): one per GPU, or CPU processes (gloo) up to the cores
    if torch.cuda.is_available():
        count = torch.cuda.device_count()
        items.append((device_choice("cuda", 0), f"all GPUs ({count}, one process each)"))
    items += [(device_choice("cpu", n), f"{n} processes (CPU)")
              for n in (2, 4) if n == 2 or cores >= n]
    return items
