"""Output shape, parameter count and MACs of a plug-in block, measured.

A plug-in says nothing but how to build its module, so the analysis builds it and
runs it on meta tensors: shapes propagate, no memory is allocated and no arithmetic
is done, so even a large block costs about a millisecond. MACs are half the FLOPs
that ``torch.utils.flop_counter`` counts (it counts a multiply-add as two). An
operation without a meta kernel falls back to a real run at batch 1 on the CPU.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from ..errors import BlockError
from ..spec import Shape, fmt_shape


def measure(fn: Callable[..., Any], inputs: int, params: dict[str, Any],
            shapes: list[Shape]) -> tuple[Shape, int, int]:
    """(output shape without the batch, parameters, MACs per sample) of ``fn``'s module.

    Raises BlockError whose message completes "<block type> …", e.g. "cannot be
    built for input [12,32,32]: ValueError: …".
    """
    where = ", ".join(fmt_shape(s) for s in shapes)
    arg = shapes[0] if inputs == 1 else list(shapes)
    try:
        with torch.device("meta"):
            module = fn(arg, **params)
    except (Exception, SystemExit) as exc:  # noqa: BLE001 - the plug-in's own failure
        raise BlockError(f"cannot be built for input {where}: {_describe(exc)}") from None
    if not isinstance(module, nn.Module):
        raise BlockError(f"returns {type(module).__name__}, not a torch.nn.Module: its "
                         f"function must return a module")
    count = sum(p.numel() for p in module.parameters())
    try:
        out, macs = _run(module, shapes, "meta")
    except BlockError:
        raise
    except (Exception, SystemExit):  # noqa: BLE001 - no meta kernel: try for real
        try:
            out, macs = _run(fn(arg, **params), shapes, "cpu")
        except BlockError:
            raise
        except (Exception, SystemExit) as exc:  # noqa: BLE001
            raise BlockError(f"fails on an input {where}: {_describe(exc)}") from None
    return out, count, macs


def _run(module: nn.Module, shapes: list[Shape], device: str) -> tuple[Shape, int]:
    module.eval()  # batch 1 must work (BatchNorm in training mode refuses it)
    xs = [torch.zeros((1, *s), device=device) for s in shapes]
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        y = module(*xs)
    if not isinstance(y, torch.Tensor):
        raise BlockError(f"builds a module that returns {type(y).__name__}, not one tensor: "
                         f"a block has exactly one output")
    if y.dim() == 0 or y.shape[0] != 1:
        raise BlockError(f"builds a module that changes the batch dimension (output "
                         f"{list(y.shape)} for a batch of 1): keep it first and unchanged")
    return tuple(int(d) for d in y.shape[1:]), int(counter.get_total_flops()) // 2


def _describe(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__
